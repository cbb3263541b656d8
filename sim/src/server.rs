//! The HTTP server under every simulator: a `127.0.0.1:0` listener whose connections can be cut
//! one at a time (to inject a dropped connection) or all at once (when the simulator goes away).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Keeps a simulator's server running; dropping it stops accepting connections and cuts the open
/// ones at their next read or write.
pub struct ServerGuard {
    task: JoinHandle<()>,
    closed: Arc<AtomicBool>,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

/// Serves `router` on `127.0.0.1:0` in a background task and returns the bound address.
pub(crate) async fn serve(router: Router) -> io::Result<(SocketAddr, ServerGuard)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let closed = Arc::new(AtomicBool::new(false));
    let listener = SimListener {
        inner: listener,
        closed: closed.clone(),
    };
    let app = router.into_make_service_with_connect_info::<ConnKill>();
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "simulator server stopped");
        }
    });
    Ok((addr, ServerGuard { task, closed }))
}

/// A handle on one connection that makes it fail (so hyper closes it without answering).
#[derive(Clone)]
pub(crate) struct ConnKill {
    killed: Arc<AtomicBool>,
}

impl std::fmt::Debug for ConnKill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulator connection")
    }
}

impl ConnKill {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnKill {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(crate) struct SimListener {
    inner: TcpListener,
    closed: Arc<AtomicBool>,
}

impl Listener for SimListener {
    type Io = SimStream;
    type Addr = ConnKill;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let killed = Arc::new(AtomicBool::new(false));
                    let io = SimStream {
                        inner: stream,
                        killed: killed.clone(),
                        closed: self.closed.clone(),
                    };
                    return (io, ConnKill { killed });
                }
                Err(error) => {
                    tracing::debug!(%error, "simulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnKill {
            killed: Arc::new(AtomicBool::new(false)),
        })
    }
}

pub(crate) struct SimStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
}

impl SimStream {
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) || self.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection dropped by the simulator",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
