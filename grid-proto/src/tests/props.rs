//! Property tests over random operation sequences (filled in separately).
