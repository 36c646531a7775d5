"""Engine benchmark: every cell against torch.nn.LSTM/GRU/RNN (see lstmkit/bench.py). Same as `lstmkit bench`."""

import sys

from lstmkit.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
