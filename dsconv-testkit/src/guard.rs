//! Guarded buffers: a kernel reading past its input meets NaN (which poisons its outputs);
//! one writing past its output changes a canary.

/// Floats of guard zone around every buffer a kernel sees: a kernel reading past its input
/// meets NaN (which poisons its outputs); one writing past its output changes the guard.
pub const GUARD: usize = 64;
pub const CANARY: f32 = -7.25e30;

/// `data` inside a buffer with NaN guards on both sides; returns the buffer.
pub fn guarded_input(data: &[f32]) -> Vec<f32> {
    let mut buf = vec![f32::NAN; data.len() + 2 * GUARD];
    buf[GUARD..GUARD + data.len()].copy_from_slice(data);
    buf
}

/// An output buffer of `len` floats inside canary guards.
pub fn guarded_output(len: usize) -> Vec<f32> {
    let mut buf = vec![CANARY; len + 2 * GUARD];
    buf[GUARD..GUARD + len].fill(f32::NAN);
    buf
}

/// The output part of a guarded buffer, after checking the guards are intact.
pub fn unguard(what: &str, buf: &[f32]) -> Result<Vec<f32>, String> {
    let len = buf.len() - 2 * GUARD;
    let intact = buf[..GUARD]
        .iter()
        .chain(&buf[GUARD + len..])
        .all(|&v| v == CANARY);
    if !intact {
        return Err(format!("{what}: wrote outside its output slice"));
    }
    Ok(buf[GUARD..GUARD + len].to_vec())
}
