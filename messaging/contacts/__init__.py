"""Churches, their staff and their contacts; phone numbers in E.164 form."""
