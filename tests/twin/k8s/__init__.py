"""A Kubernetes API server emulator for tests (the cluster half of the local platform twin).

    from tests.twin.k8s import Emulator, EmulatorThread, PodRuntime, PodHandle
"""

from .emulator import Emulator
from .runtime import PodHandle, PodRuntime
from .thread import EmulatorThread

__all__ = ["Emulator", "EmulatorThread", "PodHandle", "PodRuntime"]
