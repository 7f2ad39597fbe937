"""Training throughput of model/ against the plain Keras reference, alternating in one process.

The reference is the plain Keras code the project grew from: a Sequential of
4 LSTM(20) + Dense(5), compiled with MAE loss and Adam, trained with
``model.fit`` at batch 10 on 500 series of length 50. Ours is the same
configuration through ``model.build_stacked_lstm`` and ``model.fit_epochs``.
Both run under ``search.threads.configure_threads`` with the CPUs of one trial,
and both see the same validation set after every epoch, because the product
always validates. Each repetition trains a fresh model of each kind; the order
alternates so that a change in machine load hits both.

    python benchmarks/training_step.py --out training_step.json
    python benchmarks/training_step.py --out training_step.json --quick
"""

from __future__ import annotations

import time

import harness

from search.threads import configure_threads

N_TRAIN = 500
N_VAL = 125  # the product's 4:1 train:validation ratio
LENGTH = 50
HORIZON = 5
BATCH_SIZE = 10
DEPTH = 4
UNITS = 20
CPUS = 1  # resources.cpus_per_trial's default


def build_reference(keras):
    """Build the plain Keras reference model, written as a user would."""
    from keras.layers import LSTM, Dense
    from keras.models import Sequential

    model = Sequential()
    model.add(keras.Input(shape=(LENGTH, 1)))
    model.add(LSTM(UNITS, return_sequences=True))
    model.add(LSTM(UNITS, return_sequences=True))
    model.add(LSTM(UNITS, return_sequences=True))
    model.add(LSTM(UNITS))
    model.add(Dense(HORIZON))
    model.compile(loss="mae", optimizer="adam")
    return model


def time_reference(keras, train, val, epochs: int) -> tuple[float, float]:
    """Return the wall and CPU seconds of the reference's fit call."""
    model = build_reference(keras)
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(train.X, train.y, batch_size=BATCH_SIZE, epochs=epochs, validation_data=(val.X, val.y), verbose=0)
    return time.perf_counter() - started, time.process_time() - cpu_started


def time_ours(train, val, epochs: int) -> tuple[float, float]:
    """Return the wall and CPU seconds of ``fit_epochs``."""
    from model import build_stacked_lstm, fit_epochs

    model = build_stacked_lstm(DEPTH, UNITS, LENGTH, HORIZON, learning_rate=1e-3)
    started, cpu_started = time.perf_counter(), time.process_time()
    fit_epochs(model, train.X, train.y, val.X, val.y, epochs=epochs, batch_size=BATCH_SIZE)
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    args = harness.parse_args(__doc__.splitlines()[0])
    repetitions, epochs = (3, 2) if args.quick else (7, 5)

    configure_threads(CPUS)
    import keras

    from data import generate_examples

    train = generate_examples(N_TRAIN, LENGTH, HORIZON, seed=[0, 1])
    val = generate_examples(N_VAL, LENGTH, HORIZON, seed=[0, 2])

    # Warm up both paths once, so the first repetition does not pay for loading
    # TensorFlow's kernels.
    keras.backend.clear_session()
    time_ours(train, val, 1)
    keras.backend.clear_session()
    time_reference(keras, train, val, 1)

    # Each time covers the whole fit call, the first epoch's tracing included.
    # CPU time is reported too because, on a machine shared with other work,
    # wall time measures the load as much as the code.
    per_second: dict[str, list[float]] = {"ours": [], "reference": []}
    per_cpu_second: dict[str, list[float]] = {"ours": [], "reference": []}
    rows = []
    for repetition in range(repetitions):
        order = ("ours", "reference") if repetition % 2 == 0 else ("reference", "ours")
        for model_name in order:
            keras.backend.clear_session()
            keras.utils.set_random_seed(repetition)
            if model_name == "ours":
                wall_s, cpu_s = time_ours(train, val, epochs)
            else:
                wall_s, cpu_s = time_reference(keras, train, val, epochs)
            per_second[model_name].append(N_TRAIN * epochs / wall_s)
            per_cpu_second[model_name].append(N_TRAIN * epochs / cpu_s)
            rows.append(
                {
                    "repetition": repetition + 1,
                    "model": model_name,
                    "fit_s": wall_s,
                    "fit_cpu_s": cpu_s,
                    "examples_per_s": N_TRAIN * epochs / wall_s,
                    "examples_per_cpu_s": N_TRAIN * epochs / cpu_s,
                }
            )

    harness.print_table(rows, ["repetition", "model", "fit_s", "fit_cpu_s", "examples_per_s", "examples_per_cpu_s"])
    ours_median = harness.median(per_second["ours"])
    reference_median = harness.median(per_second["reference"])
    ours_cpu_median = harness.median(per_cpu_second["ours"])
    reference_cpu_median = harness.median(per_cpu_second["reference"])
    summary = {
        "ours_examples_per_s": ours_median,
        "seed_examples_per_s": reference_median,
        "ratio": ours_median / reference_median,
        "ours_examples_per_cpu_s": ours_cpu_median,
        "seed_examples_per_cpu_s": reference_cpu_median,
        "ratio_cpu": ours_cpu_median / reference_cpu_median,
        "settings": {
            "n_train": N_TRAIN,
            "n_val": N_VAL,
            "length": LENGTH,
            "batch_size": BATCH_SIZE,
            "depth": DEPTH,
            "units": UNITS,
            "epochs": epochs,
            "repetitions": repetitions,
            "cpus": CPUS,
        },
        "ours_examples_per_s_all": per_second["ours"],
        "seed_examples_per_s_all": per_second["reference"],
    }
    print(
        f"ours {ours_median:.0f} examples/s, reference {reference_median:.0f} examples/s, ratio {summary['ratio']:.3f}; "
        f"per CPU-second ratio {summary['ratio_cpu']:.3f}"
    )
    harness.write_summary(args.out, "training_step", args.quick, summary)


if __name__ == "__main__":
    main()
