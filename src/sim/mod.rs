//! Simulators of the vendor services (placeholder until they land).
