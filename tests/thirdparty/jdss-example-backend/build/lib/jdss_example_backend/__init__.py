"""A third-party backend, registered only through its entry point.

It keeps the fake backend's pool but reports its own health, so a test can
see which backend served a command.
"""

from jdss.backends.fake import FakeBackend
from jdss.transport import Transport


class ExampleBackend(FakeBackend):
    def get_pool(self):
        info = super().get_pool()
        info.health = "EXAMPLE"
        return info


class ExampleTransport(Transport):
    """Attaches nothing; names the target it was handed."""

    kind = "url"

    def connect(self, properties):
        return "example://%s/%d" % (properties["target_iqn"],
                                    properties["target_lun"])

    def disconnect(self, properties):
        pass
