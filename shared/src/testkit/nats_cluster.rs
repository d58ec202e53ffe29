//! A JetStream cluster of real nats-servers on loopback for one test: each
//! node with its own client port, route port and store folder, named
//! `n0`, `n1`, ... so that a stream's leader (reported by name) maps to the
//! process to kill. Nodes are killed on drop.

use super::nats_server::{NatsServer, find_nats_server, free_port};

/// A cluster name no other test cluster carries. Two tests that start
/// clusters at the same time can probe the same free port, so one cluster's
/// route may reach the other's route listener; with one shared name (and the
/// same node names) the two merged and JetStream placement failed for good
/// ("no suitable peers"). With distinct names nats-server refuses the route.
fn unique_cluster_name() -> String {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("shopmesh-test-{}-{n}", std::process::id())
}

/// Nodes of one cluster, in name order.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` clustered nodes with JetStream. Panics with the reason
    /// when they cannot be started, like [`NatsServer::start`]. The nodes are
    /// up when this returns; JetStream needs a moment more to elect its meta
    /// leader, so callers retry their first JetStream request.
    pub fn start(size: usize) -> Self {
        let bin = find_nats_server().unwrap_or_else(|e| panic!("{e}"));
        let mut last_error = String::new();
        // A probed free port can be taken before a node binds it: start the
        // whole cluster again on fresh ports.
        for _ in 0..5 {
            let cluster_name = unique_cluster_name();
            let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
            let mut nodes = Vec::with_capacity(size);
            for (index, route_port) in route_ports.iter().enumerate() {
                let routes = route_ports
                    .iter()
                    .filter(|p| *p != route_port)
                    .map(|p| format!("nats://127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let args = vec![
                    "--server_name".to_owned(),
                    node_name(index),
                    "--cluster_name".to_owned(),
                    cluster_name.clone(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{route_port}"),
                    "--routes".to_owned(),
                    routes,
                ];
                match NatsServer::try_start(bin.clone(), free_port(), args) {
                    Ok(node) => nodes.push(node),
                    Err(error) => {
                        last_error = error;
                        break;
                    }
                }
            }
            if nodes.len() == size {
                return Self { nodes };
            }
        }
        panic!("cannot start a {size}-node nats-server cluster: {last_error}")
    }

    /// Every node's URL, comma-separated: a `NATS_URL` that survives the
    /// loss of any one node.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node a server name (as JetStream reports leaders)
    /// belongs to.
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| node_name(i) == server_name)
    }
}

/// The server name of node `index`.
pub fn node_name(index: usize) -> String {
    format!("n{index}")
}
