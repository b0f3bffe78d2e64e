// Whether a TCP server has come up: for a rank that must connect to the store rank 0 hosts (core/distributed.cpp).
#pragma once

#include <chrono>
#include <string>

namespace robustlens {

/// Whether something accepts connections at address:port within `timeout`. A TCPStore client that finds no server
/// yet waits a whole second before it tries again, and rank 0 starts its server as the others start: half the
/// 2-rank runs spent that second. Probing every 10 ms instead costs nothing.
/// An address that does not resolve is an Error.
bool listening_within(const std::string& address, int port, std::chrono::milliseconds timeout);

}  // namespace robustlens
