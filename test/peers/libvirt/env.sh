# Source this after up.sh: what the libvirt integration tests (TestIntegration* in agent/) read.
export VIGIL_LIBVIRT=1
# The peer's own env (LV_URI_A, LV_URI_B, LV_SHARED...): the tests read the file itself too.
if [ -f "${LV_STATE_DIR:-/var/tmp/vigil-libvirt}/env" ]; then
	. "${LV_STATE_DIR:-/var/tmp/vigil-libvirt}/env"
fi
