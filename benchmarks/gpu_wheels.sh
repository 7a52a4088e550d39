#!/usr/bin/env bash
# Fetch (here, where PyPI is reachable) the wheels benchmarks/gpu_check.sh needs on the device's bare Python 3.12
# image: what koemo imports that the image lacks (its torch, transformers, accelerate, numpy, pandas, pyarrow,
# scikit-learn, scipy, tqdm, pyyaml are used as they are). Writes .whl/ (git-ignored via .git/info/exclude).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
# dvc and dvclive with their pure-Python dependencies, plus the audio stack the feature stages use
packages=(dvc==3.67.1 dvclive==3.49.1 soundfile==0.14.0 soxr librosa==0.11.0 audioread pooch decorator
          espeakng-loader==0.2.4 safetensors==0.8.0)
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .whl "${packages[@]}"
du -sh .whl
