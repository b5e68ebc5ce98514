"""The twin's container registry: which images exist (pull / model-engine image check) and which crash."""

from __future__ import annotations

import threading

from .config import DEFAULT_BROKEN_IMAGES, DEFAULT_IMAGES


class Registry:
    def __init__(self, images=None, broken=None):
        self._lock = threading.Lock()
        self.images = set(DEFAULT_IMAGES if images is None else images)
        self.broken = set(DEFAULT_BROKEN_IMAGES if broken is None else broken)

    def exists(self, image: str) -> bool:
        with self._lock:
            return image in self.images

    def is_broken(self, image: str) -> bool:
        with self._lock:
            return image in self.broken

    def add(self, image: str, broken: bool = False) -> None:
        with self._lock:
            self.images.add(image)
            if broken:
                self.broken.add(image)
            else:
                self.broken.discard(image)

    def remove(self, image: str) -> None:
        with self._lock:
            self.images.discard(image)

    def snapshot(self) -> dict:
        with self._lock:
            return {"images": sorted(self.images), "broken": sorted(self.broken)}
