"""keras-ssl."""
