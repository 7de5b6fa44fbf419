"""jumpwire's Python plugin host.

It runs one upstream Jumpstarter driver instance (a class written against
``jumpstarter.driver.Driver``) per process and serves it over jumpwire's plugin
protocol (``proto/plugin/v1/plugin.proto``) on a unix socket, so that the Go
exporter supervises Python drivers exactly like Go ones.
"""

__version__ = "0.1.0"

# The go-plugin handshake jumpwire's exporter expects (sdk.Handshake).
MAGIC_COOKIE_KEY = "JUMPWIRE_PLUGIN"
MAGIC_COOKIE_VALUE = "8d3c1f6e-jumpwire-driver"
PROTOCOL_VERSION = 1
# 1: resource streams; 2: named parameters (Method.param_info); 3: the
# plugin's own errors are marked (DRIVER_ERROR_TRAILER); 4: configured
# children, called through the exporter's Children service.
PROTOCOL_MINOR = 4

# gRPC metadata keys of the plugin protocol.
METHOD_HEADER = "jumpwire-method"
RESOURCE_HEADER = "jumpwire-resource"
INSTANCE_HEADER = "jumpwire-instance"
# The trailer that marks an error status as the plugin's own answer.
DRIVER_ERROR_TRAILER = "jumpwire-driver-error"

# The label of a ConfigureResponse that lists the children a driver created
# itself (JSON, see jumpwire_pyhost.tree.Child).
CHILDREN_LABEL = "jumpwire.dev/children"

# The largest message either side sends or accepts (internal/wire.MaxMessageSize).
MAX_MESSAGE_SIZE = 64 << 20
