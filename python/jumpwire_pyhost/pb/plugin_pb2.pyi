from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MethodKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_KIND_UNSPECIFIED: _ClassVar[MethodKind]
    METHOD_KIND_UNARY: _ClassVar[MethodKind]
    METHOD_KIND_STREAMING: _ClassVar[MethodKind]
    METHOD_KIND_BYTE_STREAM: _ClassVar[MethodKind]

class FrameKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_KIND_DATA: _ClassVar[FrameKind]
    FRAME_KIND_RST_STREAM: _ClassVar[FrameKind]
    FRAME_KIND_PING: _ClassVar[FrameKind]
    FRAME_KIND_GOAWAY: _ClassVar[FrameKind]
METHOD_KIND_UNSPECIFIED: MethodKind
METHOD_KIND_UNARY: MethodKind
METHOD_KIND_STREAMING: MethodKind
METHOD_KIND_BYTE_STREAM: MethodKind
FRAME_KIND_DATA: FrameKind
FRAME_KIND_RST_STREAM: FrameKind
FRAME_KIND_PING: FrameKind
FRAME_KIND_GOAWAY: FrameKind

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("sdk_version", "protocol_minor", "types", "version", "call_socket")
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_MINOR_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CALL_SOCKET_FIELD_NUMBER: _ClassVar[int]
    sdk_version: str
    protocol_minor: int
    types: _containers.RepeatedCompositeFieldContainer[DriverType]
    version: str
    call_socket: str
    def __init__(self, sdk_version: _Optional[str] = ..., protocol_minor: _Optional[int] = ..., types: _Optional[_Iterable[_Union[DriverType, _Mapping]]] = ..., version: _Optional[str] = ..., call_socket: _Optional[str] = ...) -> None: ...

class DriverType(_message.Message):
    __slots__ = ("name", "aliases", "client", "description", "methods", "config", "exclusive")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    client: str
    description: str
    methods: _containers.RepeatedCompositeFieldContainer[Method]
    config: _containers.RepeatedCompositeFieldContainer[ConfigKey]
    exclusive: bool
    def __init__(self, name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., client: _Optional[str] = ..., description: _Optional[str] = ..., methods: _Optional[_Iterable[_Union[Method, _Mapping]]] = ..., config: _Optional[_Iterable[_Union[ConfigKey, _Mapping]]] = ..., exclusive: _Optional[bool] = ...) -> None: ...

class Method(_message.Message):
    __slots__ = ("name", "description", "kind", "params", "variadic", "result", "param_info")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    VARIADIC_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PARAM_INFO_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    kind: MethodKind
    params: _containers.RepeatedScalarFieldContainer[str]
    variadic: bool
    result: str
    param_info: _containers.RepeatedCompositeFieldContainer[Param]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[MethodKind, str]] = ..., params: _Optional[_Iterable[str]] = ..., variadic: _Optional[bool] = ..., result: _Optional[str] = ..., param_info: _Optional[_Iterable[_Union[Param, _Mapping]]] = ...) -> None: ...

class Param(_message.Message):
    __slots__ = ("name", "type", "default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    default: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., default: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ConfigKey(_message.Message):
    __slots__ = ("name", "type", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ConfigureRequest(_message.Message):
    __slots__ = ("type", "config", "name", "path", "children", "children_socket")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_SOCKET_FIELD_NUMBER: _ClassVar[int]
    type: str
    config: _struct_pb2.Struct
    name: str
    path: str
    children: _containers.RepeatedCompositeFieldContainer[Child]
    children_socket: str
    def __init__(self, type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., name: _Optional[str] = ..., path: _Optional[str] = ..., children: _Optional[_Iterable[_Union[Child, _Mapping]]] = ..., children_socket: _Optional[str] = ...) -> None: ...

class Child(_message.Message):
    __slots__ = ("name", "uuid", "path", "type", "methods", "config", "children")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    name: str
    uuid: str
    path: str
    type: str
    methods: _containers.RepeatedCompositeFieldContainer[Method]
    config: _struct_pb2.Struct
    children: _containers.RepeatedCompositeFieldContainer[Child]
    def __init__(self, name: _Optional[str] = ..., uuid: _Optional[str] = ..., path: _Optional[str] = ..., type: _Optional[str] = ..., methods: _Optional[_Iterable[_Union[Method, _Mapping]]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., children: _Optional[_Iterable[_Union[Child, _Mapping]]] = ...) -> None: ...

class ConfigureResponse(_message.Message):
    __slots__ = ("problems", "description", "methods", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    problems: _containers.RepeatedCompositeFieldContainer[ConfigProblem]
    description: str
    methods: _containers.RepeatedCompositeFieldContainer[Method]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, problems: _Optional[_Iterable[_Union[ConfigProblem, _Mapping]]] = ..., description: _Optional[str] = ..., methods: _Optional[_Iterable[_Union[Method, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ConfigProblem(_message.Message):
    __slots__ = ("key", "message")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    key: str
    message: str
    def __init__(self, key: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CallRequest(_message.Message):
    __slots__ = ("method", "args")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    method: str
    args: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, method: _Optional[str] = ..., args: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class CallResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class CallFrame(_message.Message):
    __slots__ = ("id", "instance", "request", "cancel", "response", "code", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    instance: str
    request: CallRequest
    cancel: bool
    response: CallResponse
    code: int
    message: str
    def __init__(self, id: _Optional[int] = ..., instance: _Optional[str] = ..., request: _Optional[_Union[CallRequest, _Mapping]] = ..., cancel: _Optional[bool] = ..., response: _Optional[_Union[CallResponse, _Mapping]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("handover",)
    HANDOVER_FIELD_NUMBER: _ClassVar[int]
    handover: bool
    def __init__(self, handover: _Optional[bool] = ...) -> None: ...

class CloseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Frame(_message.Message):
    __slots__ = ("payload", "kind")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    kind: FrameKind
    def __init__(self, payload: _Optional[bytes] = ..., kind: _Optional[_Union[FrameKind, str]] = ...) -> None: ...
