#!/usr/bin/env bash
# Set up tuiplayer on a Debian/Ubuntu machine with Python 3.11, from this checkout.
#
#   scripts/setup.sh          system libraries + .venv with tuiplayer (to play music)
#   scripts/setup.sh --test   also the tools the tests and the training data need,
#                             and tuiplayer installed editable with its test extras
#
# Safe to run again: it installs only what is missing. Uses sudo when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# to play: Python's venv, PortAudio (sound output), ALSA's pulse plugin (PULSE_SERVER, e.g. over
# SSH), libsndfile, ffmpeg (m4a, MUSDB .stem.mp4, writing NI Stems files)
packages=(python3.11-venv libportaudio2 libasound2-plugins libsndfile1 ffmpeg)
if [ "${1:-}" = "--test" ]; then
  # training data (FluidSynth, General MIDI soundfonts, sampled drum kits, espeak-ng voices)
  # and real audio output in tests (a private PulseAudio server, ALSA plugins, tmux)
  packages+=(fluidsynth fluid-soundfont-gm timgm6mb-soundfont hydrogen-drumkits avldrums.lv2-soundfont espeak-ng
             pulseaudio pulseaudio-utils alsa-utils tmux)
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q '.[stretch]'  # (tempo and pitch: Rubber Band, GPL)
fi
echo "tuiplayer is installed in $(pwd)/.venv (run .venv/bin/tuiplayer)"
