"""What an admin needs to add a TOTP device to an authenticator app, shown by the commands."""

import io
from base64 import b32encode

import qrcode
from django_otp.plugins.otp_totp.models import TOTPDevice


def totp_secret(device: TOTPDevice) -> str:
    """The base32 secret an authenticator app asks for when the QR code cannot be scanned."""
    return b32encode(device.bin_key).decode()


def qr_text(data: str) -> str:
    """A QR code drawn with block characters, for a terminal with a dark background."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def totp_instructions(*, config_url: str, secret: str) -> str:
    """The otpauth URI, the base32 secret and a QR code of the URI, ready to print."""
    return "\n".join(
        [
            "Add the TOTP device to an authenticator app (Google Authenticator, 1Password, Aegis...):",
            f"  otpauth URI: {config_url}",
            f"  secret:      {secret}  (base32; 6 digits every 30 s)",
            "  or scan this (drawn for a dark terminal; if it will not scan, type the secret):",
            qr_text(config_url),
        ]
    )


def device_instructions(device: TOTPDevice) -> str:
    return totp_instructions(config_url=device.config_url, secret=totp_secret(device))
