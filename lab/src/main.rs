//! `s3r-lab --listen 127.0.0.1:0 --latency 20ms --jitter 5ms`: prints `listening on
//! http://ADDR` and serves until killed.

use std::io::Write;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Latency lab: a loopback S3 and SQS subset with injected latency")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Added to every S3 and SQS request (not to /_lab/ admin calls).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// The latency varies uniformly by this much either way.
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    jitter: Duration,
    /// Region in queue ARNs.
    #[arg(long, default_value = "ap-northeast-2")]
    region: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let lab = s3r_lab::server::Lab::new(args.latency, args.jitter, &args.region);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    tokio::select! {
        r = s3r_lab::server::serve(lab, listener) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
