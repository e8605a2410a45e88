//! `ember`: a thread-per-core cache that speaks the Redis protocol, and a batched
//! recommendation-inference server over the features it holds.
//!
//! ```text
//! ember [/path/to/redis.conf] [--port 6379] [--bind 127.0.0.1] [--threads N] [--busy-poll-us 50] ...
//! ```

use ember_server::{config, inference, server};

/// jemalloc, as Redis uses: `used_memory` is what it reports.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: ember [/path/to/redis.conf] [--option value ...]

Options use Redis's names, for example:
  --port 6379              TCP port (0 picks a free one)
  --bind 127.0.0.1         addresses to listen on
  --threads N              shards, one thread each (default: one per core)
  --server_cpulist 0-3     pin the shards to these CPUs, one each in turn (default: not pinned)
  --busy-poll-us 50        spin this long after the last request before parking a shard (0: never spin)
  --io-uring yes           yes: socket I/O through one io_uring per shard, batched; no: the
                           runtime's sockets, with the epoll spinner when busy polling
  --requirepass PASSWORD   require AUTH
  --tls-port 0             TLS port beside --port (--port 0: TLS only), with --tls-cert-file,
                           --tls-key-file and --tls-ca-cert-file (client certificates:
                           --tls-auth-clients yes|no|optional); Redis's other tls-* names too
  --maxclients 10000       most connections at once
  --maxmemory 0            memory limit in bytes, units k kb m mb g gb (0: none); over it,
                           keys are evicted under --maxmemory-policy (default noeviction:
                           writes get Redis's OOM error, reads are served; Redis's policies,
                           and allkeys-tinylfu: W-TinyLFU, a TinyLFU read history and an
                           adaptive admission window over sampled eviction)
  --dir . --dbfilename dump.rdb
                           where SAVE and BGSAVE write the snapshot, loaded at start
  --save \"3600 1 300 100\"  save points (seconds and changes; default none)
  --appendonly no          yes: log every write in dir/appendonlydir, replayed at start
  --appendfsync everysec   when the log is synced: always, everysec or no
  --metrics-port 0         Prometheus endpoint port (0 = off)
  --shm PATH               shared-memory transport on Unix socket PATH (one-sided GETs)
  --rdma                   verbs transport (RDMA NIC or SoftRoCE), if a device exists";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}{}", inference::USAGE);
        return;
    }
    if args.iter().any(|arg| arg == "--version" || arg == "-v") {
        println!(
            "ember {} (redis_version 7.2.4 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    let (inference_config, args) = match inference::InferenceConfig::extract(&args) {
        Ok(split) => split,
        Err(error) => {
            eprintln!("ember: {error}\n\n{USAGE}{}", inference::USAGE);
            std::process::exit(1);
        }
    };
    let config = match config::Config::from_args(&args) {
        Ok(mut config) => {
            config.inference = inference_config;
            config
        }
        Err(error) => {
            eprintln!("ember: {error}\n\n{USAGE}");
            std::process::exit(1);
        }
    };
    raise_open_files_limit(config.maxclients);
    ember_server::clock::calibrate();
    if let Err(error) = server::run(config) {
        eprintln!("ember: {error}");
        std::process::exit(1);
    }
}

/// Raises the soft limit on open files towards what `maxclients` connections need (plus room for
/// the server's own descriptors), as Redis does at start-up, up to the hard limit: a default soft
/// limit of 1,024 would otherwise refuse clients long before `maxclients`.
fn raise_open_files_limit(maxclients: usize) {
    const RESERVED: u64 = 64;
    let wanted = maxclients as u64 + RESERVED;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= wanted {
            return;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 || raised.rlim_cur < wanted {
            eprintln!(
                "ember: open files limit is {} (hard limit {}), below the {} that maxclients {} needs",
                raised.rlim_cur.max(limit.rlim_cur),
                limit.rlim_max,
                wanted,
                maxclients
            );
        }
    }
}
