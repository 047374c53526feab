"""The embedded AWS: moto's server on loopback plus orderflow's docker-less Lambda runtime."""
