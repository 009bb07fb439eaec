from keras_ssl.data.images import ImageData, load_image_data
