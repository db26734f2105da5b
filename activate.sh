# Source this file (bash/zsh): activates .venv and the built interfaces in .ros_ws.
# Created by `make setup` (scripts/setup.sh).
_sst_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
if [ ! -f "$_sst_root/.venv/bin/activate" ]; then
  echo "sst_ros: no .venv here; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_sst_root/.venv/bin/activate"
if [ -f "$_sst_root/.ros_ws/install/setup.sh" ]; then
  # colcon's setup.sh needs COLCON_CURRENT_PREFIX when sourced from elsewhere.
  COLCON_CURRENT_PREFIX="$_sst_root/.ros_ws/install" . "$_sst_root/.ros_ws/install/setup.sh"
fi
export AMENT_PREFIX_PATH="$_sst_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
unset _sst_root
