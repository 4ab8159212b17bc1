"""twistd plugin entry: kept to one ServiceMaker so plugin scans stay cheap."""
from twisted.application.service import ServiceMaker

personiumDav = ServiceMaker(
    "personium-dav",
    "personium_dav.ops.tap",
    "A WebDAV server hosting Personium boxes and service collections.",
    "personium-dav",
)
