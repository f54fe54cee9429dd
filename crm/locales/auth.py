"""Login, password and account messages."""

MESSAGES: dict[str, tuple[str, str]] = {
    "auth.form_title": ("Log in", "登录"),
    "auth.username": ("Username", "用户名"),
    "auth.password": ("Password", "密码"),
    "auth.login": ("Log in", "登录"),
    "auth.invalid_credentials": (
        "Wrong username or password, or the account is locked. Try again in a few minutes or ask an admin.",
        "用户名或密码错误，或账户已被锁定。请稍后再试或联系管理员。",
    ),
    "auth.wrong_password": ("The current password is wrong.", "当前密码不正确。"),
    "error.password_too_short": ("At least {min} characters.", "至少 {min} 个字符。"),
    "error.password_same": (
        "Choose a password different from the current one and your username.",
        "新密码不能与当前密码或用户名相同。",
    ),
    "error.password_too_long": ("At most {max} bytes.", "最多 {max} 个字节。"),
    "error.password_whitespace": ("Must not start or end with a space.", "首尾不能有空格。"),
    "error.invalid_username": (
        "Use lower-case letters, digits and . _ @ - only.",
        "只能使用小写字母、数字和 . _ @ -。",
    ),
    "error.not_a_manager": ("Choose an active manager.", "请选择一位在职的销售经理。"),
    "account.title": ("My account", "我的账户"),
    "account.change_password": ("Change password", "修改密码"),
    "account.current_password": ("Current password", "当前密码"),
    "account.new_password": ("New password", "新密码"),
    "account.repeat_password": ("Repeat new password", "再次输入新密码"),
    "account.passwords_differ": ("The two new passwords differ.", "两次输入的新密码不一致。"),
    "account.password_changed": (
        "Password changed. Other browsers where you were logged in are logged out.",
        "密码已修改，您在其他浏览器上的登录已失效。",
    ),
    "account.profile": ("Profile", "个人信息"),
}
