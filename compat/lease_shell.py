"""Run a command as `jmp shell --lease NAME` would, through a controller.

Upstream's own client code does the work: its Lease (client/lease.py) serves
a local unix socket whose every connection Dials the controller and is
carried to the exporter by the router (connect_router_stream); the command
gets that socket in JUMPSTARTER_HOST, as in upstream's shell. Only the
lease's acquisition (ClientService) is skipped: the lease already exists.

usage: lease_shell.py CONTROLLER NAMESPACE CLIENT TOKEN CA_BASE64 LEASE -- COMMAND...
"""

import os
import subprocess
import sys
from datetime import timedelta

import anyio
import grpc
from anyio.from_thread import start_blocking_portal
from jumpstarter.client.lease import Lease
from jumpstarter.common.grpc import aio_secure_channel, ssl_channel_credentials
from jumpstarter.config.common import ObjectMeta
from jumpstarter.config.grpc import call_credentials
from jumpstarter.config.tls import TLSConfigV1Alpha1


async def main(argv: list[str]) -> int:
    controller, namespace, client, token, ca, lease_name = argv[:6]
    command = argv[7:]
    tls = TLSConfigV1Alpha1(ca=ca)
    credentials = grpc.composite_channel_credentials(
        await ssl_channel_credentials(controller, tls),
        call_credentials("Client", ObjectMeta(namespace=namespace, name=client), token),
    )
    channel = aio_secure_channel(controller, credentials, None)
    with start_blocking_portal() as portal:
        lease = Lease(
            channel=channel,
            duration=timedelta(minutes=5),
            selector=None,
            portal=portal,
            namespace=namespace,
            name=lease_name,
            allow=[],
            unsafe=True,
            release=False,
            tls_config=tls,
        )
        async with lease.serve_unix_async() as path:
            env = dict(os.environ, JUMPSTARTER_HOST=path, JMP_DRIVERS_ALLOW="UNSAFE")
            result = await anyio.to_thread.run_sync(lambda: subprocess.run(command, env=env))
    await channel.close()
    return result.returncode


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1:]))
