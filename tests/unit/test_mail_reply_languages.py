"""Reply cutting in the forms mail clients write in many languages: attributions, header blocks, dividers,
device lines, inline and bottom replies, signatures. The strings are the clients' own (Gmail, Apple Mail,
Thunderbird, Outlook, Samsung, Outlook mobile), written for these tests."""

import pytest

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.reply import Reply, extract, rules
from mail2ticket.mail.reply_html import html_reply

SETTINGS = GlobalConfig()
RULES = rules(tuple(SETTINGS.multiline_delimiter_patterns), tuple(SETTINGS.introductory_patterns))
NEW = "Thanks, that fixed it.\nThe printer works again."

# (client and language, attribution line) as each client writes it above a quote.
ATTRIBUTIONS = [
    ("gmail en", "On Mon, Nov 3, 2025 at 10:12 AM Bob Martin <bob@example.com> wrote:"),
    ("apple en", "On 3 Nov 2025, at 10:12, Bob Martin <bob@example.com> wrote:"),
    ("thunderbird en", "On 03/11/2025 10:12, Bob Martin wrote:"),
    ("gmail de", "Am Mo., 3. Nov. 2025 um 10:12 Uhr schrieb Bob Martin <bob@example.com>:"),
    ("apple de", "Am 03.11.2025 um 10:12 schrieb Bob Martin <bob@example.com>:"),
    ("thunderbird fr", "Le 03/11/2025 à 10:12, Bob Martin a écrit :"),
    ("gmail es", "El lun, 3 nov 2025 a las 10:12, Bob Martin (<bob@example.com>) escribió:"),
    ("gmail ca", "El dl., 3 de nov. 2025 a les 10:12, Bob Martin (<bob@example.com>) va escriure:"),
    ("gmail it", "Il giorno lun 3 nov 2025 alle ore 10:12 Bob Martin <bob@example.com> ha scritto:"),
    ("apple nl", "Op 3 nov. 2025 om 10:12 heeft Bob Martin <bob@example.com> het volgende geschreven:"),
    ("gmail pt", "Em seg., 3 de nov. de 2025 às 10:12, Bob Martin <bob@example.com> escreveu:"),
    ("gmail sv", "Den mån 3 nov. 2025 kl 10:12 skrev Bob Martin <bob@example.com>:"),
    ("gmail da", "Den man. 3. nov. 2025 kl. 10.12 skrev Bob Martin <bob@example.com>:"),
    ("gmail nb", "man. 3. nov. 2025 kl. 10:12 skrev Bob Martin <bob@example.com>:"),
    ("gmail fi", "ma 3. marrask. 2025 klo 10.12 Bob Martin (bob@example.com) kirjoitti:"),
    ("apple fi", "Bob Martin <bob@example.com> kirjoitti 3.11.2025 kello 10.12:"),
    ("gmail pl", "pon., 3 lis 2025 o 10:12 Bob Martin <bob@example.com> napisał(a):"),
    ("thunderbird pl", "W dniu 3.11.2025 o 10:12, Bob Martin pisze:"),
    ("apple pl", "Wiadomość napisana przez Bob Martin <bob@example.com> w dniu 03.11.2025, o godz. 10:12:"),
    ("thunderbird cs", "Dne 3. 11. 2025 v 10:12 Bob Martin napsal(a):"),
    ("gmail hu", "Bob Martin <bob@example.com> ezt írta (időpont: 2025. nov. 3., H, 10:12):"),
    ("gmail ro", "Pe lun., 3 nov. 2025 la 10:12, Bob Martin <bob@example.com> a scris:"),
    ("gmail hr", "pon, 3. stu 2025. u 10:12 Bob Martin <bob@example.com> napisao je:"),
    ("gmail ru", "пн, 3 нояб. 2025 г. в 10:12, Bob Martin <bob@example.com>:"),
    ("thunderbird ru", "03.11.2025 10:12, Bob Martin пишет:"),
    ("gmail uk", "пн, 3 лист. 2025 р. о 10:12 Bob Martin <bob@example.com> пише:"),
    ("gmail el", "Στις Δευ 3 Νοε 2025 στις 10:12, ο/η Bob Martin <bob@example.com> έγραψε:"),
    ("gmail tr", "Bob Martin <bob@example.com>, 3 Kas 2025 Pzt, 10:12 tarihinde şunu yazdı:"),
    ("gmail he", "בתאריך יום ב׳, 3 בנוב׳ 2025 ב-10:12 מאת Bob Martin <bob@example.com>:"),
    ("gmail vi", "Vào Th 2, 3 thg 11, 2025 vào lúc 10:12 Bob Martin <bob@example.com> đã viết:"),
    ("gmail id", "Pada tanggal Sen, 3 Nov 2025 pukul 10.12 Bob Martin <bob@example.com> menulis:"),
    ("gmail zh", "Bob Martin <bob@example.com> 于2025年11月3日周一 10:12写道："),
    ("apple zh", "在 2025年11月3日，10:12，Bob Martin <bob@example.com> 写道："),
    ("gmail ja", "2025年11月3日(月) 10:12 Bob Martin <bob@example.com>:"),
    ("apple ja", "2025/11/03 10:12、Bob Martin <bob@example.com>のメール:"),
    ("gmail ko", "2025년 11월 3일 (월) 오전 10:12, Bob Martin <bob@example.com>님이 작성:"),
    ("zoho en", "---- On Mon, 03 Nov 2025 10:12:00 +0100 Bob Martin <bob@example.com> wrote ----"),
]


@pytest.mark.parametrize(("client", "attribution"), ATTRIBUTIONS, ids=[a[0] for a in ATTRIBUTIONS])
def test_an_attribution_cuts_the_quote_with_or_without_quote_marks(client: str, attribution: str) -> None:
    quoted = f"{NEW}\n\n{attribution}\n> The original question\n> more"
    unquoted = f"{NEW}\n\n{attribution}\n\nThe original question, not quoted."

    assert extract(quoted, RULES).text == NEW, client
    assert extract(unquoted, RULES).text == NEW, client


@pytest.mark.parametrize(("client", "attribution"), ATTRIBUTIONS[:12], ids=[a[0] for a in ATTRIBUTIONS[:12]])
def test_an_attribution_wrapped_at_a_space_is_still_one(client: str, attribution: str) -> None:
    cut = attribution.rfind(" ", 0, len(attribution) // 2 + 10)
    wrapped = f"{attribution[:cut]}\n{attribution[cut + 1 :]}"

    assert extract(f"{NEW}\n\n{wrapped}\n\n> old", RULES).text == NEW, client


def test_an_attribution_on_the_line_of_the_last_words_is_cut_there() -> None:
    text = (
        "Sounds good, see you then. On Mon, Nov 3, 2025 at 10:12 AM Bob <bob@example.com> wrote:\n> Shall we?"
    )

    assert extract(text, RULES).text == "Sounds good, see you then."


def test_an_address_split_before_its_closing_bracket_is_one_attribution() -> None:
    text = "Fixed.\n\ntir. 3. nov. 2025 kl. 10:12 skrev Bob Martin <bob@example.com\n>:\n\n> old"

    assert extract(text, RULES).text == "Fixed."


# Outlook's header block labels (From, Sent, To, Cc, Subject) as each localized Outlook writes them.
OUTLOOK = {
    "en": ("From", "Sent", "To", "Cc", "Subject"),
    "de": ("Von", "Gesendet", "An", "Cc", "Betreff"),
    "fr": ("De", "Envoyé", "À", "Cc", "Objet"),
    "es": ("De", "Enviado el", "Para", "CC", "Asunto"),
    "it": ("Da", "Inviato", "A", "Cc", "Oggetto"),
    "nl": ("Van", "Verzonden", "Aan", "CC", "Onderwerp"),
    "pt": ("De", "Enviada", "Para", "Cc", "Assunto"),
    "sv": ("Från", "Skickat", "Till", "Kopia", "Ämne"),
    "da": ("Fra", "Sendt", "Til", "Cc", "Emne"),
    "nb": ("Fra", "Sendt", "Til", "Kopi", "Emne"),
    "fi": ("Lähettäjä", "Lähetetty", "Vastaanottaja", "Kopio", "Aihe"),
    "pl": ("Od", "Wysłano", "Do", "DW", "Temat"),
    "cs": ("Od", "Odesláno", "Komu", "Kopie", "Předmět"),
    "sk": ("Od", "Odoslané", "Komu", "Kópia", "Predmet"),
    "hu": ("Feladó", "Elküldve", "Címzett", "Másolatot kap", "Tárgy"),
    "ro": ("De la", "Trimis", "Către", "Cc", "Subiect"),
    "hr": ("Šalje", "Poslano", "Prima", "Kopija", "Predmet"),
    "ru": ("От", "Отправлено", "Кому", "Копия", "Тема"),
    "uk": ("Від", "Надіслано", "Кому", "Копія", "Тема"),
    "bg": ("От", "Изпратено", "До", "Як", "Относно"),
    "el": ("Από", "Εστάλη", "Προς", "Κοιν.", "Θέμα"),
    "tr": ("Kimden", "Gönderildi", "Kime", "Bilgi", "Konu"),
    "he": ("מאת", "נשלח", "אל", "עותק", "נושא"),
    "ar": ("من", "تم الإرسال", "إلى", "نسخة", "الموضوع"),
    "ja": ("差出人", "送信日時", "宛先", "CC", "件名"),
    "zh": ("发件人", "发送时间", "收件人", "抄送", "主题"),
    "zh-tw": ("寄件者", "寄件日期", "收件者", "副本", "主旨"),
    "ko": ("보낸 사람", "보낸 날짜", "받는 사람", "참조", "제목"),
    "vi": ("Từ", "Đã gửi", "Đến", "Cc", "Chủ đề"),
    "id": ("Dari", "Dikirim", "Kepada", "Cc", "Subjek"),
}


def _blocks(labels: tuple[str, str, str, str, str]) -> dict[str, str]:
    sender, sent, to, cc, subject = labels
    return {
        "plain": f"{sender}: Bob Martin <bob@example.com>\n{sent}: Monday, 3 November 2025 10:12\n"
        f"{to}: Support <support@example.com>\n{cc}: Ann <ann@example.com>\n{subject}: Printer",
        "after a rule": f"________________________________\n{sender}: Bob <bob@example.com>\n{sent}: Monday\n"
        f"{to}: Support\n{subject}: Printer",
        "bold": f"*{sender}:* Bob <bob@example.com>\n*{sent}:* Monday\n*{to}:* Support\n*{subject}:* Printer",
        "wrapped values": f"{sender}: Bob Martin\n<bob@example.com>\n{sent}: Monday\n"
        f"{to}: Support <support@example.com>; Ann\n<ann@example.com>\n{subject}: Printer",
        "space before colons": f"{sender} : Bob <bob@example.com>\n{sent} : lundi\n{to} : Support\n"
        f"{subject} : x",
        "another order": f"{sent}: Monday\n{sender}: Bob <bob@example.com>\n{subject}: Printer\n"
        f"{to}: Support",
    }


@pytest.mark.parametrize("language", sorted(OUTLOOK))
def test_outlook_header_blocks_cut_in_every_language_and_form(language: str) -> None:
    for form, block in _blocks(OUTLOOK[language]).items():
        assert (
            extract(f"Thanks, done.\n\n{block}\n\nThe original question.", RULES).text == "Thanks, done."
        ), (
            language,
            form,
        )


@pytest.mark.parametrize(
    "divider",
    [
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
        "-----Message d'origine-----",
        "-----Mensaje original-----",
        "-----Messaggio originale-----",
        "-----Oorspronkelijk bericht-----",
        "-----Ursprungligt meddelande-----",
        "-----Oprindelig meddelelse-----",
        "-----Alkuperäinen viesti-----",
        "-----Oryginalna wiadomość-----",
        "-----Исходное сообщение-----",
        "-----原始邮件-----",
        "-------- Original-Nachricht --------",
        "-------- Message transféré --------",
        "---------- Forwarded message ---------",
        "---------- Weitergeleitete Nachricht ---------",
        "---------- Mensaje reenviado ---------",
        "---------- 転送されたメッセージ ---------",
        "----- Forwarded Message -----",
        "Begin forwarded message:",
        "Début du message réexpédié :",
        "Anfang der weitergeleiteten Nachricht:",
        "Inicio del mensaje reenviado:",
    ],
)
def test_dividers_and_forward_markers_cut_and_are_not_left_behind(divider: str) -> None:
    with_headers = (
        f"Please see below.\n\n{divider}\nFrom: Bob <bob@example.com>\nDate: Mon, 3 Nov 2025\n\nold"
    )
    alone = f"Please see below.\n\n{divider}\n\nold text"

    assert extract(with_headers, RULES).text == "Please see below."
    assert extract(alone, RULES).text == "Please see below."


@pytest.mark.parametrize(
    "device",
    [
        "Sent from my iPhone",
        "Sent from my Samsung Galaxy smartphone.",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Sent from Yahoo Mail on Android",
        "Von meinem iPhone gesendet",
        "Gesendet von Outlook für Android<https://aka.ms/ghei36>",
        "Envoyé de mon iPhone",
        "Envoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>",
        "Enviado desde mi smartphone Samsung Galaxy.",
        "Inviato da iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Enviado do meu iPhone",
        "Skickat från min iPhone",
        "Sendt fra min iPhone",
        "Wysłane z iPhone'a",
        "Отправлено с iPhone",
        "iPhoneから送信",
        "iPhone에서 보냄",
        "发自我的iPhone",
    ],
)
def test_a_device_line_is_the_signature_and_what_follows_it_is_the_earlier_mail(device: str) -> None:
    for text in (
        f"Yes, it works now.\n\n{device}",
        f"Yes, it works now.\n\n{device}\n\nThe original question, without quote marks.",
        f"Yes, it works now.\n\n{device}\n\nOn Mon, 3 Nov 2025, Bob <bob@example.com> wrote:\n> question",
    ):
        reply = extract(text, RULES)
        assert (reply.without_signature, reply.signature) == ("Yes, it works now.", device), text


def test_an_inline_reply_keeps_every_answer_even_below_a_greeting_and_an_attribution() -> None:
    text = (
        "Hi Bob,\n\nanswers inline.\n\nOn Mon, 3 Nov 2025, Bob <bob@example.com> wrote:\n"
        "> Is the printer on?\nYes.\n> Which model?\nHP 4000.\n\nAnn"
    )

    assert extract(text, RULES).text == "Hi Bob,\n\nanswers inline.\n\nYes.\nHP 4000.\n\nAnn"


@pytest.mark.parametrize(
    ("client", "attribution"), ATTRIBUTIONS[:20:3], ids=[a[0] for a in ATTRIBUTIONS[:20:3]]
)
def test_a_bottom_reply_keeps_the_answer_under_the_quote(client: str, attribution: str) -> None:
    text = f"{attribution}\n> Is the printer on again?\n\nYes, it is.\nAnn"

    assert extract(text, RULES).text == "Yes, it is.\nAnn", client


def test_an_answer_under_the_quote_after_a_short_greeting_is_no_signature() -> None:
    reply = extract("Hi Bob.\n\n> Is the printer on again?\n\nYes, it works again.\nAnn", RULES)

    assert reply.without_signature == "Hi Bob.\n\nYes, it works again.\nAnn"


def test_a_quote_a_client_rewrapped_stays_a_quote() -> None:
    text = (
        "Done, thank you.\nAll good now.\n\nOn Mon, 3 Nov 2025, Bob <bob@example.com> wrote:\n"
        "> Please restart the printer and check the cable on the\nback side.\n> Bob"
    )

    assert extract(text, RULES).text == "Done, thank you.\nAll good now."


def test_a_signature_under_the_quote_of_a_top_posted_reply_is_the_signature() -> None:
    reply = extract("Thanks, done.\n\n> old question\n> more\n\nAnn Smith\nACME Corp\n+1 555 0100", RULES)

    assert (reply.without_signature, reply.signature) == (
        "Thanks, done.",
        "Ann Smith\nACME Corp\n+1 555 0100",
    )


@pytest.mark.parametrize(
    ("closing", "language"),
    [
        ("Med vänliga hälsningar", "sv"),
        ("Mit freundlichen Grüßen", "de"),
        ("Cordialement,", "fr"),
        ("Un saludo,", "es"),
        ("Cordiali saluti", "it"),
        ("Met vriendelijke groet,", "nl"),
        ("Pozdrawiam", "pl"),
        ("S pozdravem", "cs"),
        ("Üdvözlettel", "hu"),
        ("С уважением,", "ru"),
        ("Saygılarımla", "tr"),
        ("よろしくお願いいたします。", "ja"),
        ("Cheers 🎉", "en"),
    ],
)
def test_a_closing_formula_starts_the_signature(closing: str, language: str) -> None:
    reply = extract(f"The printer works again.\n\n{closing}\nAnn", RULES)

    assert reply.without_signature == "The printer works again.", language


def test_a_rule_of_dashes_starts_a_signature_block() -> None:
    reply = extract("Thanks for the update!\n\n—————\nSarah Johnson\nProduct Manager", RULES)

    assert reply.without_signature == "Thanks for the update!"


@pytest.mark.parametrize(
    "text",
    [
        "I wrote to bob@example.com on 3 May:\nplease reset it.",
        "The error code is 0x80004005:\nnothing else happens.",
        "Here is what the vendor wrote:\nthey will ship on Monday.",
        "From: the 3rd floor\nTo: the 5th floor\nPlease move the printer.",
        "On Monday the printer stopped.\nOn Tuesday it worked again.",
        "Sent from my phone, sorry for typos: the VPN is down.",
        "Steps:\n- open the app\n- click on Login",
    ],
)
def test_ordinary_lines_that_look_like_reply_markers_are_kept(text: str) -> None:
    assert extract(text, RULES).text == text


@pytest.mark.parametrize(
    "html",
    [
        "Thanks, it works.<br><br>On Mon, Nov 3, 2025 at 10:12 AM Bob &lt;bob@example.com&gt; wrote:"
        "<blockquote>old text</blockquote>",
        '<div>Thanks, it works.</div>On Mon, Nov 3, 2025 at 10:12 AM Bob <a href="mailto:bob@example.com">'
        'bob@example.com</a> wrote:<blockquote type="cite">old text</blockquote>',
        "<p>Thanks, it works.</p><p>On 3 Nov 2025, at 10:12, Bob &lt;bob@example.com&gt; wrote:</p>"
        "<div>old text not in a blockquote</div>",
        "<div>Thanks, it works.</div><div>-----Ursprüngliche Nachricht-----<br>"
        "Von: Bob &lt;bob@example.com&gt;"
        "<br>Gesendet: Montag<br>An: Support<br>Betreff: x</div><div>old text</div>",
        "<div>Thanks, it works.</div><div><br></div>"
        "<div>2025年11月3日(月) 10:12 Bob &lt;bob@example.com&gt;:<br>"
        "</div><blockquote>old text</blockquote>",
    ],
)
def test_html_attributions_and_blocks_are_cut_from_the_html_too(html: str) -> None:
    found = html_reply(html, SETTINGS.html_tags_to_remove, RULES)

    assert found.reply.without_signature == "Thanks, it works."
    assert "old text" not in found.html and "Thanks, it works." in found.html


def test_a_reply_keeps_its_text_when_its_signature_would_be_all_of_it() -> None:
    assert Reply("Regards,\nBob", "Regards,\nBob").without_signature == "Regards,\nBob"
