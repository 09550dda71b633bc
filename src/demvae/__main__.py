"""``python -m demvae``: the command line (what ``torchrun -m demvae train ...`` starts on every rank)."""

from demvae.cli import main

if __name__ == "__main__":
    main()
