"""Tests of nfdoctor.net modules that need their own fixtures (real TLS servers on loopback)."""
