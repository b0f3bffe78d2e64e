#include "robustlens/core/port_probe.h"

#include "robustlens/core/error.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <thread>

namespace robustlens {

bool listening_within(const std::string& address, int port, std::chrono::milliseconds timeout) {
  ::addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  ::addrinfo* found = nullptr;
  const int resolved = ::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found);
  RL_CHECK(resolved == 0, "cannot join the process group: the master address '", address,
           "' (--master-addr or MASTER_ADDR) does not resolve (", ::gai_strerror(resolved), ")");
  const std::unique_ptr<::addrinfo, void (*)(::addrinfo*)> addresses(found, ::freeaddrinfo);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const ::addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) continue;
      bool accepted = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
      if (!accepted && errno == EINPROGRESS) {  // a remote host: wait for the handshake a little
        ::pollfd poll_fd{fd, POLLOUT, 0};
        int error = 0;
        ::socklen_t length = sizeof error;
        accepted =
            ::poll(&poll_fd, 1, 100) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
      }
      ::close(fd);
      if (accepted) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace robustlens
