"""Image encoders: pure functions `init(rng, images)` and `apply(params, images)`."""
