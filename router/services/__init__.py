"""Services: where the service decides; controllers only translate."""
