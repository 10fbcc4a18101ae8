"""Opening the project's websockets in tests, through the real ASGI application."""

from channels.testing import WebsocketCommunicator

from config.asgi import application

DEBUGGER = "/ws/v1/debugger/?key="
ONBOARDING = "/ws/v1/onboarding/?token="


async def connect(path: str, credential: str):
    """(communicator, connected, close code) for `path` + credential."""
    communicator = WebsocketCommunicator(application, f"{path}{credential}")
    connected, close_code = await communicator.connect(timeout=3)
    return communicator, connected, close_code


async def close_code_for(path: str, credential: str) -> int | None:
    """A refused credential: the socket is accepted, then closed at once with a code."""
    communicator, connected, _ = await connect(path, credential)
    assert connected
    output = await communicator.receive_output(timeout=3)
    return output["code"] if output["type"] == "websocket.close" else None
