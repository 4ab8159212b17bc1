"""PROPFIND (SPEC §7): depth, request kinds, live and dead properties, the
hardened parser, the multistatus shape, and the streamed Depth 1 listing."""
import os
import re
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from lxml import etree
from twisted.internet import defer

from personium_dav.propfind_helpers import *  # noqa: F401,F403  (placeholder, replaced below)
