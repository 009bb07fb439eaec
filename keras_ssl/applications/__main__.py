"""Rebuilds an application's shipped weights (or writes them elsewhere).

    KERAS_BACKEND=torch python -m keras_ssl.applications gpt_python_docs
    python -m keras_ssl.applications simclr_digits --out my_preset/
    python -m keras_ssl.applications --list

Runs the application's recipe on its embedded data and saves the backbone
(and tokenizer) as a keras-hub preset directory, with a
`keras_ssl_application.json` record of the recipe, backend, time and scores.
"""

import argparse
import json
import sys


def main(argv=None):
    from keras_ssl import applications

    parser = argparse.ArgumentParser(
        prog="python -m keras_ssl.applications", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="an application (see --list)")
    parser.add_argument("--out", default=None,
                        help="preset folder (default: the package's shipped weights)")
    parser.add_argument("--list", action="store_true", help="list the applications")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        for name in applications.list():
            app = applications.get(name)
            shipped = "weights shipped" if app.embedded else "paper recipe"
            print(f"{name:28s} {app.modality:10s} {shipped:16s} {app.summary}")
        return 0
    app = applications.get(args.name)
    if not app.embedded and args.out is None:
        parser.error(f"{app.name} is a paper recipe with no shipped weights: pass "
                     "--out DIR to train it here (on its embedded-size data it "
                     f"would not fit), or run: {app.command}")
    run = app.build(out=args.out, verbose=2)
    print(json.dumps(app.record if args.out is None else {}, indent=2, default=str))
    print(f"wrote {args.out or app.weights} in {run.seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
