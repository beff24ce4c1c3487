"""A TCP forwarder: how the simulated hosts (tests/fleet.py) reach a service that listens on
this machine's loopback only, as a LAN reaches a server. PostgreSQL here trusts 127.0.0.1
and nothing else; its configuration is not ours to change.

    python -m tests.forwarder TARGET_PORT ADDRESS:PORT [ADDRESS:PORT ...]

accepts on every ADDRESS:PORT and relays each connection to 127.0.0.1:TARGET_PORT; prints
`ready` once it listens. A host cut off the network simply stops reaching it.
"""

from __future__ import annotations

import asyncio
import sys
from functools import partial


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay(target: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def _serve(target: int, listens: list[tuple[str, int]]) -> None:
    servers = [
        await asyncio.start_server(partial(_relay, target), host, port) for host, port in listens
    ]
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str]) -> None:
    target, *addresses = argv
    listens = [(host, int(port)) for host, port in (a.rsplit(":", 1) for a in addresses)]
    asyncio.run(_serve(int(target), listens))


if __name__ == "__main__":
    main(sys.argv[1:])
