"""End-to-end tests: the real nfdoctor CLI against the simulator served on loopback."""
