#include "support/temp_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace wsgate::test {

temp_file::temp_file(std::string_view contents, std::string_view suffix) {
    const char* tmpdir = std::getenv("TMPDIR");
    path_ = std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/wsgate-it-XXXXXX" +
            std::string(suffix);
    const int fd = ::mkostemps(path_.data(), static_cast<int>(suffix.size()), O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("mkostemps: ") + std::strerror(errno));
    std::string_view rest = contents;
    while (!rest.empty()) {
        const auto n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::close(fd);
            throw std::runtime_error(std::string("write temp file: ") + std::strerror(errno));
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
}

temp_file::~temp_file() {
    ::unlink(path_.c_str());
}

}  // namespace wsgate::test
