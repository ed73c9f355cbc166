"""HTTP routes of the service, each module a few thin handlers over the store and live state."""
