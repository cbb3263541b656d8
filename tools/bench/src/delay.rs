//! A TCP relay that holds every chunk for a fixed time each way: a database across a network
//! (`hoist-bench scm --pg-delay-us`), where loopback has none. Chunks keep their order, and a
//! chunk's delay runs from when it was read, so back-to-back chunks are not delayed twice.
//!
//! Plain threads, not tasks: `std::thread::sleep` keeps to tens of microseconds, where tokio's
//! timer rounds every deadline up to a whole millisecond.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Listens on a free loopback port and relays every connection to `target`, `one_way` late in
/// each direction. Answers the port's address; the relay lives as long as the process.
pub fn relay(target: SocketAddr, one_way: Duration) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("relay-accept".into())
        .spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                for (from, to) in [(&client, &server), (&server, &client)] {
                    if let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) {
                        pipe(from, to, one_way);
                    }
                }
            }
        })?;
    Ok(addr)
}

/// One direction: a thread reads and stamps each chunk, another writes it when it is due.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    let _ = std::thread::Builder::new()
        .name("relay-read".into())
        .spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                if chunks
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        });
    let _ = std::thread::Builder::new()
        .name("relay-write".into())
        .spawn(move || {
            while let Ok((at, chunk)) = due.recv() {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
}
