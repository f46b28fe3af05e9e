//! The bundled OCI runtime, `inspector-runtime`, is not written yet: this crate
//! holds its place in the workspace.
