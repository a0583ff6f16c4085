"""gorae (고래): a Docker-compatible container engine written in Python."""

__version__ = "0.1.0"
API_VERSION = "1.45"
MIN_API_VERSION = "1.24"
