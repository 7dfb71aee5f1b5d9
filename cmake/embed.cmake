# Writes the bytes of IN as a C array NAME (and NAME_len) into OUT: the status page is kept as a
# real HTML file in the tree and built into the program. usage: cmake -DIN= -DOUT= -DNAME= -P
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" hex "${hex}")
file(WRITE "${OUT}" "/* Generated from ${IN} by cmake/embed.cmake. */\n#include \"serve_page.h\"\n"
    "const unsigned char ${NAME}[] = {\n${hex}};\nconst size_t ${NAME}_len = sizeof(${NAME});\n")
