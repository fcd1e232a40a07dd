/* hex_digit.h - the lowercase hex digit the line-oriented host test drivers (sgq_tool.c, pass_driver.c)
 * accept in their byte strings. */
#ifndef TESTS_C_HEX_DIGIT_H
#define TESTS_C_HEX_DIGIT_H

/* 0..15 for '0'-'9' and 'a'-'f', -1 for anything else (upper case included). */
static inline int hex_val(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

#endif /* TESTS_C_HEX_DIGIT_H */
