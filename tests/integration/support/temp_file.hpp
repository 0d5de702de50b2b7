#pragma once
// temp_file: a file in $TMPDIR (or /tmp) holding given contents, removed on destruction.

#include <string>
#include <string_view>

namespace wsgate::test {

class temp_file {
public:
    explicit temp_file(std::string_view contents, std::string_view suffix = "");
    ~temp_file();
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace wsgate::test
