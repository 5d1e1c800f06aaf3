#!/usr/bin/env python3
"""Writes the HL7 v2 test corpus: messages/, acks/ and vectors.tsv.

usage: gen_corpus.py OUT_DIR

Deterministic: the same script always writes the same bytes (no clock, no
randomness; the 1 MiB PDF body comes from a SHA-256 counter stream).
Standard library only. See README.md beside this file for what each file
is for; the tests assert the identifiers and field values set here.
"""
import base64
import hashlib
import os
import sys

CR, LF, CRLF = "\r", "\n", "\r\n"
SB, EB = b"\x0b", b"\x1c\r"


# ---- segments ---------------------------------------------------------------

def segment(seg_id, fields, fs="|"):
    """A segment from {field number: value}; unset fields are empty and
    trailing empty fields are left out."""
    last = max(fields) if fields else 0
    return fs.join([seg_id] + [fields.get(i, "") for i in range(1, last + 1)])


def msh(fields, fs="|", enc="^~\\&", seg_id="MSH"):
    """MSH (or FHS/BHS) from {field number: value} for MSH-3 on. MSH-1 is
    the field separator itself and MSH-2 the encoding characters, so field
    n >= 3 is the (n - 1)th after the segment id."""
    shifted = {n - 1: v for n, v in fields.items()}
    shifted[1] = enc
    return segment(seg_id, shifted, fs)


def message(segments, end=CR, charset="ascii"):
    """Segments joined and each ended by `end`, encoded as `charset`."""
    return "".join(s + end for s in segments).encode(charset)


def header(app, fac, rapp, rfac, ts, msg_type, control_id, version="2.5",
           **more):
    """MSH-3..12 plus any later fields given as m13=..., m18=..."""
    fields = {3: app, 4: fac, 5: rapp, 6: rfac, 7: ts, 9: msg_type,
              10: control_id, 11: "P", 12: version}
    for k, v in more.items():
        fields[int(k[1:])] = v
    return fields


# ---- the ADT^A01 used by most files -----------------------------------------

ADT_A01_CONTROL_ID = "01052901"


def adt_a01_header(control_id):
    return header("MegaReg", "XYZHospC", "SuperOE", "XYZImgCtr",
                  "20060529090131-0500", "ADT^A01^ADT_A01", control_id)


def adt_a01_body():
    doctor = "^^^MD^0010^UAMC^L"
    return [
        segment("EVN", {2: "200605290901", 6: "200605290900"}),
        segment("PID", {
            3: "56782445^^^UAReg^PI",
            5: "KLEINSAMPLE^BARRY^Q^JR",
            7: "19620910",
            8: "M",
            10: "2028-9^^HL70005^RA99113^^XYZ",
            11: "~".join([
                "260 GOODWIN CREST DRIVE^^BIRMINGHAM^AL^35209^^M",
                "NICKELL'S PICKLES^10000 W 100TH AVE^BIRMINGHAM^AL^35200^^O",
            ]),
            18: "0105I30001^^^99DEF^AN",
        }),
        segment("PV1", {
            2: "I",
            3: "W^389^1^UABH^^^^3",
            7: "12345^MORGAN^REX^J" + doctor,
            9: "67890^GRAINGER^LUCY^X" + doctor,
            10: "MED",
            15: "A0",
            17: "13579^POTTER^SHERMAN^T" + doctor,
            44: "200605290900",
        }),
        segment("OBX", {1: "1", 2: "NM", 3: "^Body Height", 5: "1.80",
                        6: "m^Meter^ISO+", 11: "F"}),
        segment("OBX", {1: "2", 2: "NM", 3: "^Body Weight", 5: "79",
                        6: "kg^Kilogram^ISO+", 11: "F"}),
        segment("AL1", {1: "1", 3: "^ASPIRIN"}),
        segment("DG1", {1: "1", 3: "786.50^CHEST PAIN, UNSPECIFIED^I9",
                        6: "A"}),
    ]


def adt_a01(control_id=ADT_A01_CONTROL_ID):
    return [msh(adt_a01_header(control_id))] + adt_a01_body()


# ---- messages -----------------------------------------------------------------

def adt_a08_utf8():
    return message([
        msh(header("ADT1", "H\u00d4PITAL-NORD", "LAB", "LABO",
                   "20261126101500+0100", "ADT^A08^ADT_A01",
                   "MSG-UTF8-0001", "2.5.1", m15="AL", m16="NE",
                   m18="UNICODE UTF-8")),
        segment("EVN", {1: "A08", 2: "20261126101500"}),
        segment("PID", {1: "1", 3: "PAT-\u00c4\u00d6\u00dc-77^^^HN^MR",
                        5: "M\u00fcller-L\u00fcdenscheidt^Zo\u00eb^"
                           "\u00c5ngstr\u00f6m",
                        7: "19800229", 8: "F",
                        11: "Stra\u00dfe des 17. Juni 1^^Berlin^^10623^DE"}),
        segment("NK1", {1: "1", 2: "Nguy\u1ec5n^V\u0103n An", 3: "SPO",
                        4: "\u6771\u4eac\u90fd\u5343\u4ee3\u7530\u533a"
                           "^^\u6771\u4eac", 6: "+81-3-0000-0000"}),
        segment("PV1", {1: "1", 2: "O", 3: "ER^^^HN"}),
    ], charset="utf-8")


def adt_a04_latin1():
    return message([
        msh(header("ADT1", "KLINIK", "LAB", "LABOR", "20261126103000",
                   "ADT^A04^ADT_A01", "MSG-L1-0001", m17="DEU",
                   m18="8859/1")),
        segment("PID", {1: "1", 3: "4711^^^KL^MR",
                        5: "Gr\u00f6\u00dfe^J\u00fcrgen", 7: "19751111",
                        8: "M",
                        11: "Hauptstra\u00dfe 5^^K\u00f6ln^^50667^DE"}),
    ], charset="latin-1")


def orm_o01():
    when = "^^^20261126080000^^R"
    return message([
        msh(header("OE", "GENHOSP", "RAD", "GENHOSP", "20261126080000",
                   "ORM^O01^ORM_O01", "ORM0000042", "2.3.1")),
        segment("PID", {1: "1", 3: "1234567^^^GENHOSP^MR",
                        5: "DOE^JANE^A", 7: "19700101", 8: "F"}),
        segment("PV1", {1: "1", 2: "O", 3: "CLINIC^^^GENHOSP"}),
        segment("ORC", {1: "NW", 2: "ORD448811", 7: when}),
        segment("OBR", {1: "1", 2: "ORD448811",
                        4: "71020^CHEST XRAY 2 VIEWS^CPT",
                        7: "20261126075500", 27: when}),
    ])


def siu_s12():
    return message([
        msh(header("SCHED", "CLINIC", "EHR", "CLINIC", "20261126093000",
                   "SIU^S12^SIU_S12", "SIU-20261126-1")),
        segment("SCH", {1: "10345^10345", 2: "10345^10345", 5: "10345",
                        6: "OFFICE^Office visit^LOCAL", 9: "30", 10: "m",
                        11: "^^30^20261201090000^20261201093000"}),
        segment("PID", {1: "1", 3: "99887766^^^CLINIC^MR",
                        5: "SMITH^JOHN", 7: "19551231", 8: "M"}),
        segment("RGS", {1: "1", 2: "A"}),
        segment("AIL", {1: "1", 2: "A", 3: "EXAM3^^^CLINIC"}),
        segment("AIP", {1: "1", 2: "A", 3: "4455^WELBY^MARCUS^^^DR",
                        4: "ATTENDING"}),
    ])


def lab_patient():
    return segment("PID", {1: "1", 3: "5551212^^^HOSP^MR",
                           5: "ROE^RICHARD", 7: "19601010", 8: "M"})


def enhanced_mode():
    return message([
        msh(header("LIS", "LAB", "EHR", "HOSP", "20261126120000",
                   "ORU^R01^ORU_R01", "ENH-777", m15="AL", m16="AL")),
        lab_patient(),
        segment("OBR", {1: "1", 3: "LAB-9", 4: "2345-7^GLUCOSE^LN",
                        7: "20261126115500"}),
        segment("OBX", {1: "1", 2: "NM", 3: "2345-7^GLUCOSE^LN", 5: "99",
                        6: "mg/dL", 7: "70-105", 8: "N", 11: "F"}),
    ])


def v27_truncation():
    return message([
        msh(header("APP", "FAC", "APP2", "FAC2", "20261126130000",
                   "ADT^A04^ADT_A01", "TRUNC-1", "2.7"), enc="^~\\&#"),
        segment("PID", {1: "1", 3: "777^^^FAC^MR", 5: "LONGNAME#^ANN",
                        7: "19900101", 8: "F"}),
    ])


def escapes():
    text = ("Pipe \\F\\ caret \\S\\ tilde \\R\\ amp \\T\\ backslash \\E\\ "
            "hex \\X0D0A\\ done")
    return message([
        msh(header("APP", "FAC", "APP2", "FAC2", "20261126140000",
                   "ORU^R01^ORU_R01", "ESC-1")),
        segment("OBX", {1: "1", 2: "TX", 3: "NOTE", 5: text, 11: "F"}),
    ])


def pdf_bytes(size):
    """A PDF-shaped blob of `size` bytes: header, a binary body from a
    SHA-256 counter stream, trailer."""
    head, tail = b"%PDF-1.4\n", b"\n%%EOF\n"
    need = size - len(head) - len(tail)
    body, counter = bytearray(), 0
    while len(body) < need:
        body += hashlib.sha256(b"libmllp corpus %d" % counter).digest()
        counter += 1
    return head + bytes(body[:need]) + tail


def oru_r01_pdf_1mb():
    # 786,016 bytes encode to 1,048,024 base64 characters: the whole
    # message is just under 1 MiB.
    pdf = base64.b64encode(pdf_bytes(786016)).decode("ascii")
    return message([
        msh(header("LIS", "LAB", "EHR", "HOSP", "20261126150000",
                   "ORU^R01^ORU_R01", "ORU-PDF-0001")),
        lab_patient(),
        segment("OBR", {1: "1", 3: "LAB-10", 4: "11502-2^LAB REPORT^LN",
                        7: "20261126145500"}),
        segment("OBX", {1: "1", 2: "ED", 3: "11502-2^LAB REPORT^LN",
                        5: "^AP^PDF^Base64^" + pdf, 11: "F"}),
    ])


def batch_3():
    batch_header = {3: "FEED", 4: "HOSP", 5: "EHR", 6: "HOSP",
                    7: "20261126160000"}
    segs = [msh({**batch_header, 11: "FILE-1"}, seg_id="FHS"),
            msh({**batch_header, 11: "BATCH-1"}, seg_id="BHS")]
    for i in range(1, 4):
        segs += adt_a01("B1-%04d" % i)
    segs += [segment("BTS", {1: "3"}), segment("FTS", {1: "1"})]
    return message(segs)


def feed_100():
    return b"".join(SB + message(adt_a01("FEED%06d" % i)) + EB
                    for i in range(100))


MESSAGES = {
    "adt_a01.hl7": lambda: message(adt_a01()),
    "adt_a01_lf.hl7": lambda: message(adt_a01(), end=LF),
    "adt_a01_crlf.hl7": lambda: message(adt_a01(), end=CRLF),
    "adt_a08_utf8.hl7": adt_a08_utf8,
    "adt_a04_latin1.hl7": adt_a04_latin1,
    "orm_o01.hl7": orm_o01,
    "siu_s12.hl7": siu_s12,
    "enhanced_mode.hl7": enhanced_mode,
    "v27_truncation.hl7": v27_truncation,
    "escapes.hl7": escapes,
    "oru_r01_pdf_1mb.hl7": oru_r01_pdf_1mb,
    "batch_3.hl7": batch_3,
    "feed_100.mllp": feed_100,
}


# ---- acks: replies to adt_a01.hl7 ---------------------------------------------

def ack(code, control_id=ADT_A01_CONTROL_ID, text=None, err=None, fs="|",
        end=CR, with_msa=True):
    fields = header("SuperOE", "XYZImgCtr", "MegaReg", "XYZHospC",
                    "20060529090132-0500", "ACK^A01^ACK", "ACK-0001")
    segs = [msh(fields, fs=fs)]
    if with_msa:
        msa = {1: code, 2: control_id}
        if text is not None:
            msa[3] = text
        segs.append(segment("MSA", msa, fs=fs))
    if err is not None:
        segs.append(segment("ERR", err, fs=fs))
    return message(segs, end=end)


ACKS = {
    "aa.hl7": lambda: ack("AA"),
    "ca.hl7": lambda: ack("CA"),
    "ae.hl7": lambda: ack("AE", text="Patient not found", err={
        1: "^^^207&Application internal error&HL70357", 3: "207", 4: "E",
        8: "Patient not found"}),
    "ce.hl7": lambda: ack("CE", text="Commit error"),
    "ar.hl7": lambda: ack("AR", text="Unsupported message type"),
    "cr.hl7": lambda: ack("CR", text="Commit reject"),
    "wrong_id.hl7": lambda: ack("AA", "01052902"),
    "id_prefix.hl7": lambda: ack("AA", ADT_A01_CONTROL_ID[:-1]),
    "id_superstring.hl7": lambda: ack("AA", ADT_A01_CONTROL_ID + "X"),
    "bad_code.hl7": lambda: ack("XX"),
    "lowercase_code.hl7": lambda: ack("aa"),
    "no_msa.hl7": lambda: ack(None, with_msa=False),
    "not_hl7.txt": lambda: b'<ack status="ok"/>',
    "empty.hl7": lambda: b"",
    "aa_lf.hl7": lambda: ack("AA", end=LF),
    "aa_custom_delims.hl7": lambda: ack("AA", fs="#"),
}

# message, ack, the verdict mllp_ack_verify must give (mllp_verdict_name).
VECTORS = [
    ("adt_a01.hl7", "aa.hl7", "application_accept"),
    ("adt_a01.hl7", "ca.hl7", "application_accept"),
    ("adt_a01.hl7", "ae.hl7", "application_error"),
    ("adt_a01.hl7", "ce.hl7", "application_error"),
    ("adt_a01.hl7", "ar.hl7", "application_reject"),
    ("adt_a01.hl7", "cr.hl7", "application_reject"),
    ("adt_a01.hl7", "wrong_id.hl7", "bad_message_control_id"),
    ("adt_a01.hl7", "id_prefix.hl7", "bad_message_control_id"),
    ("adt_a01.hl7", "id_superstring.hl7", "bad_message_control_id"),
    ("adt_a01.hl7", "bad_code.hl7", "bad_ack_code"),
    ("adt_a01.hl7", "lowercase_code.hl7", "bad_ack_code"),
    ("adt_a01.hl7", "no_msa.hl7", "invalid_ack_message"),
    ("adt_a01.hl7", "not_hl7.txt", "invalid_ack_message"),
    ("adt_a01.hl7", "empty.hl7", "invalid_ack_message"),
    ("adt_a01.hl7", "aa_lf.hl7", "application_accept"),
    ("adt_a01.hl7", "aa_custom_delims.hl7", "application_accept"),
    # The same message with other segment ends: the same verdicts.
    ("adt_a01_lf.hl7", "aa.hl7", "application_accept"),
    ("adt_a01_crlf.hl7", "aa.hl7", "application_accept"),
    ("adt_a01_crlf.hl7", "wrong_id.hl7", "bad_message_control_id"),
]


def vectors_tsv():
    rows = ["message\tack\texpected"]
    rows += ["messages/%s\tacks/%s\t%s" % v for v in VECTORS]
    return ("\n".join(rows) + "\n").encode("ascii")


# ---- output ---------------------------------------------------------------------

def write(path, data):
    """Write only when the bytes differ, so a re-run keeps file times."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: gen_corpus.py OUT_DIR\n")
        return 64
    out = argv[1]
    for sub, files in (("messages", MESSAGES), ("acks", ACKS)):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        for name in sorted(files):
            write(os.path.join(d, name), files[name]())
        # Nothing stale from an older version of this script.
        for name in os.listdir(d):
            if name not in files:
                os.remove(os.path.join(d, name))
    for m, a, _ in VECTORS:
        assert m in MESSAGES and a in ACKS, (m, a)
    write(os.path.join(out, "vectors.tsv"), vectors_tsv())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
