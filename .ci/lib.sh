# Shared by the .ci scripts (sourced after `cd` to the repository root): `run` echoes a
# command, runs it, and exits with its code and a message naming it if it fails; the ERR
# trap names the script and line of any other failing command.

run() {
    echo "+ $*" >&2
    "$@" || {
        local rc=$?
        echo "error: exit code $rc from: $*" >&2
        exit "$rc"
    }
}
trap 'echo "error: .ci/$(basename "$0") failed (line $LINENO): $BASH_COMMAND" >&2' ERR
