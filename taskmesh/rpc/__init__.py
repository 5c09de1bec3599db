"""gRPC plumbing shared by every service: server bootstrap (health, reflection,
interceptors), client channels and call metadata, error <-> status mapping."""
