# Source this after up.sh: what the OpenStack integration tests and the clients read.
export OS_CLIENT_CONFIG_FILE=/var/tmp/vigil-openstack/clouds.yaml
export VIGIL_OPENSTACK_CLOUD=vigil-dev
export VIGIL_AMQP_URL=amqp://vigil:vigil-rabbit@127.0.0.1:5672/
