"""Dict keys whose value is PII whatever it holds ("email", "phoneNumber", "api_key"), by type.

The detector redacts such a value whole (`guardrails/pii/detector.py`); the contact matcher reads
contact traits by the same normalised keys (`guardrails/pii/contact.py`).
"""

import re

# Lower case, letters and digits only (`normalise_key`). A bare "name" is not among them: in
# contexts and events it names steps, projects and plans, and the person's own name is found
# through their contact values.
_KEYS_BY_TYPE = (
    ("EMAIL", "email emailaddress mail useremail contactemail workemail personalemail"),
    (
        "PHONE",
        "phone phonenumber mobile mobilephone mobilenumber cell cellphone telephone tel fax whatsapp "
        "contactphone workphone homephone",
    ),
    (
        "NAME",
        "firstname lastname fullname givenname familyname surname middlename displayname username "
        "contactname customername maidenname",
    ),
    (
        "ADDRESS",
        "address streetaddress street addressline1 addressline2 address1 address2 line1 line2 postalcode "
        "postcode zip zipcode homeaddress billingaddress shippingaddress mailingaddress",
    ),
    ("IP", "ip ipaddress clientip remoteip remoteaddr xforwardedfor"),
    ("SSN", "ssn socialsecuritynumber socialsecurity"),
    ("CARD", "cardnumber creditcard creditcardnumber ccnumber pan cvv cvc debitcard"),
    ("IBAN", "iban bankaccount bankaccountnumber accountnumber routingnumber"),
    ("DOB", "dob dateofbirth birthdate birthday"),
    (
        "SECRET",
        "password passwd pwd secret apikey apisecret token accesstoken refreshtoken authtoken authorization "
        "clientsecret privatekey sessiontoken secretkey cookie",
    ),
)
PII_KEY_TYPES = {key: kind for kind, keys in _KEYS_BY_TYPE for key in keys.split()}

_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]")


def normalise_key(key: str) -> str:
    """ "phone_number", "phoneNumber", "Phone-Number" -> "phonenumber"."""
    return _NOT_ALPHANUMERIC.sub("", key.casefold())
