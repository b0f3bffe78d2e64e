#include "robustlens/core/port_probe.h"

#include "robustlens/core/error.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace robustlens {
namespace {

/// A socket listening on a free port of 127.0.0.1 (the kernel chooses it), closed with the object.
class Listener {
 public:
  Listener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    ::sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::socklen_t length = sizeof address;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<::sockaddr*>(&address), length), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<::sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
  }
  ~Listener() { ::close(fd_); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  int port() const { return port_; }

 private:
  int fd_, port_ = 0;
};

TEST(PortProbe, FindsAServerThatListensAndGivesUpOnOneThatDoesNot) {
  int closed_port = 0;
  {
    const Listener listener;
    EXPECT_TRUE(listening_within("127.0.0.1", listener.port(), std::chrono::milliseconds(2000)));
    closed_port = listener.port();
  }
  // The port just closed: refused until the deadline, then false (not an exception: the caller names the rank).
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(listening_within("127.0.0.1", closed_port, std::chrono::milliseconds(100)));
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(100));
  EXPECT_THROW(listening_within("no-such-host.invalid", 29500, std::chrono::milliseconds(100)), Error);
}

}  // namespace
}  // namespace robustlens
