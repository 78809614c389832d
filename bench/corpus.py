"""A synthetic policy corpus that looks like a retailer's: product sheets and FAQs, category policies with
regional variants, superseded, future and discontinued versions, and labelled questions.

``write_corpus(folder, documents, seed)`` writes ``documents`` Markdown files with kb front matter and a
``regions.yaml`` into ``folder`` and returns one question per document in force (about 5 chunks a document,
so 2,000 documents make about 10k chunks). The same seed writes the same bytes. Many documents share their
section headings (every coffee machine has its "Troubleshooting", every category its "Return window"), so a
question is answered by one section only through its product, SKU, category, fee or region.

    python bench/corpus.py /tmp/corpus --documents 2000    # write a corpus, print its size and timing
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path


@dataclass(frozen=True)
class Question:
    text: str
    doc_id: str
    section: str
    """The heading the answer lives under (the last heading of the section path kb records)."""
    region: str = "global"


@dataclass(frozen=True)
class _Category:
    key: str
    singular: str
    plural: str
    code: str
    capacity: tuple[str, str, float, float]
    """Label, unit, low, high."""
    power: tuple[int, int]
    parts: tuple[str, ...]
    consumables: tuple[str, ...]
    bulky: bool


# key | singular; plural | SKU code | capacity label; unit; low; high | watts | spare parts | consumables | bulky
_CATEGORY_TABLE = """
blender | blender; blenders | BLD | Jug capacity; L; 1.2; 2.0 | 600-1500 | jug, blade assembly, lid, tamper, sealing ring | sealing rings, cleaning tablets
kettle | kettle; kettles | KTL | Capacity; L; 1.0; 1.8 | 1800-3000 | limescale filter, lid hinge, power base | descaling tablets, mesh filters
toaster | toaster; toasters | TST | Slots; slots; 2; 4 | 800-1800 | crumb tray, bun warmer rack, browning dial | crumb tray liners, cleaning wipes
coffee-machine | coffee machine; coffee machines | COF | Water tank; L; 1.0; 2.2 | 900-1500 | glass carafe, filter basket, water tank, drip tray | paper filters, descaler sachets
espresso-machine | espresso machine; espresso machines | ESP | Water tank; L; 1.2; 2.5 | 1200-1700 | portafilter, steam wand tip, drip tray, brew group seal, milk jug | water filter cartridges, cleaning tablets, descaler
air-fryer | air fryer; air fryers | AFR | Basket capacity; L; 3.0; 9.0 | 1200-2400 | frying basket, crisper plate, basket divider, baking tin | baking liners, parchment rounds
stand-mixer | stand mixer; stand mixers | MIX | Bowl capacity; L; 4.0; 6.5 | 800-1500 | mixing bowl, dough hook, flat beater, balloon whisk, splash guard | bowl covers
hand-blender | hand blender; hand blenders | HBL | Beaker capacity; ml; 600; 1000 | 600-1200 | blending shaft, whisk attachment, chopper bowl, measuring beaker | chopper blades
food-processor | food processor; food processors | FPR | Bowl capacity; L; 2.0; 3.5 | 700-1300 | slicing disc, grating disc, chopping blade, food pusher, dough blade | disc storage sleeves
juicer | juicer; juicers | JCR | Juice jug; L; 0.8; 1.5 | 150-800 | juicing screw, strainer, pulp container, juice jug | cleaning brushes
rice-cooker | rice cooker; rice cookers | RCK | Capacity; cups; 5; 10 | 400-900 | inner pot, steam basket, rice paddle, measuring cup | inner lid gaskets
slow-cooker | slow cooker; slow cookers | SLC | Pot capacity; L; 3.5; 6.5 | 200-320 | ceramic pot, glass lid, lid knob | slow cooker liners
multicooker | multicooker; multicookers | MCK | Pot capacity; L; 5.0; 8.0 | 900-1400 | inner pot, sealing ring, steam release valve, condensation cup | sealing rings
waffle-maker | waffle maker; waffle makers | WAF | Plates; plates; 2; 4 | 700-1400 | waffle plates, drip tray, batter jug | non-stick spray
contact-grill | contact grill; contact grills | GRL | Grill area; cm²; 600; 1100 | 1600-2200 | grill plates, drip tray, plate scraper | drip tray liners
microwave | microwave; microwaves | MWV | Capacity; L; 20; 32 | 800-1200 | turntable plate, roller ring, grill rack, door handle | steam cleaning pouches
stick-vacuum | stick vacuum; stick vacuums | VAC | Dust bin; L; 0.4; 0.9 | 150-450 | battery pack, floor head, HEPA filter, crevice tool, charging dock | HEPA filters, brush rolls
robot-vacuum | robot vacuum; robot vacuums | RBV | Dust bin; ml; 300; 600 | 30-75 | side brush, main brush, battery, docking station, mop pad | dust bags, mop pads, side brushes
steam-iron | steam iron; steam irons | IRN | Water tank; ml; 250; 400 | 2000-3000 | soleplate cover, anti-calc cartridge, filling cup | anti-calc cartridges
garment-steamer | garment steamer; garment steamers | GST | Water tank; L; 1.0; 2.0 | 1500-2000 | steam head, steam hose, fabric brush, hanger | descaling solution
hair-dryer | hair dryer; hair dryers | HDR | Heat settings; settings; 2; 4 | 1600-2400 | concentrator nozzle, diffuser, rear filter | rear filter covers
desk-fan | desk fan; desk fans | FAN | Blade diameter; cm; 23; 40 | 25-60 | front grille, remote control, fan blade | remote batteries
oil-heater | oil-filled heater; oil-filled heaters | HTR | Fins; fins; 7; 13 | 1500-2500 | castor wheels, thermostat knob, towel rack | castor sets
dehumidifier | dehumidifier; dehumidifiers | DHM | Water tank; L; 2.0; 6.5 | 200-700 | water tank, air filter, drain hose | air filters
humidifier | humidifier; humidifiers | HUM | Water tank; L; 3.0; 7.0 | 25-300 | water tank, wick filter, mist nozzle | wick filters, demineralisation cartridges
air-purifier | air purifier; air purifiers | APU | Room size; m²; 20; 80 | 20-80 | HEPA filter, carbon pre-filter, remote control | HEPA filters, carbon pre-filters
ice-cream-maker | ice cream maker; ice cream makers | ICE | Bowl capacity; L; 1.0; 2.0 | 12-200 | freezer bowl, churning paddle, lid with chute | freezer bowl covers
dishwasher | dishwasher; dishwashers | DSW | Place settings; place settings; 9; 15 | 1800-2400 | cutlery basket, spray arm, filter assembly, door seal | rinse aid, dishwasher salt | bulky
washing-machine | washing machine; washing machines | WSH | Drum capacity; kg; 7; 11 | 2000-2300 | door seal, detergent drawer, drain pump filter, inlet hose | descaling powder | bulky
refrigerator | refrigerator; refrigerators | FRG | Total capacity; L; 250; 600 | 80-200 | crisper drawer, door shelf, water filter, ice tray | water filters | bulky
tumble-dryer | tumble dryer; tumble dryers | TDR | Drum capacity; kg; 7; 10 | 700-2600 | lint filter, condenser unit, water container | lint filters | bulky
"""  # noqa: E501


def _categories(table: str) -> tuple[_Category, ...]:
    out = []
    for line in table.strip().splitlines():
        key, names, code, capacity, watts, parts, consumables, *bulky = (f.strip() for f in line.split("|"))
        singular, plural = names.split("; ")
        label, unit, low, high = capacity.split("; ")
        lo_w, hi_w = watts.split("-")
        out.append(_Category(key, singular, plural, code, (label, unit, float(low), float(high)),
                             (int(lo_w), int(hi_w)), tuple(parts.split(", ")), tuple(consumables.split(", ")),
                             bool(bulky)))  # fmt: skip
    return tuple(out)


CATEGORIES = _categories(_CATEGORY_TABLE)
SERIES = tuple(
    "Aurora Brisa Calder Dune Ember Fjord Glimmer Harbor Isla Juno Kestrel Lumen Meridian Nova Orbit Pika Quill Rhea "
    "Solace Tundra Umber Vela Wren Yarrow Zephyr Alder Birch Cobalt Delta Echo Flint Garnet Hollis Indigo Jasper Kiln "
    "Loft Marlow Nimbus Opal Prism Quarry Ridge Sable Talon Umbra Vireo Willow Xenon Yonder Zinnia".split()
)
MODEL_SUFFIXES = ("", "", "", " Pro", " Plus", " Max", " Compact", " Lite", " S", " Duo")
COLOURS = ("Graphite", "Chalk White", "Sage", "Matte Black", "Steel", "Cream", "Navy", "Copper", "Red", "Sand")

REGION_TREE = {"EU": "global", "DE": "EU", "FR": "EU", "NL": "EU", "US": "global", "US-CA": "US", "UK": "global",
               "CA": "global", "AU": "global"}  # fmt: skip
REGION_NAMES = {"global": "", "EU": "the EU", "DE": "Germany", "FR": "France", "NL": "the Netherlands",
                "US": "the US", "US-CA": "California", "UK": "the UK", "CA": "Canada", "AU": "Australia"}  # fmt: skip
_TITLE_REGION = {"EU": "European Union", "DE": "Germany", "FR": "France", "NL": "Netherlands", "US": "United States",
                 "US-CA": "California", "UK": "United Kingdom", "CA": "Canada", "AU": "Australia"}  # fmt: skip
_CURRENCY = {"global": ("$", 1.0), "US": ("$", 1.0), "US-CA": ("$", 1.0), "UK": ("£", 0.8), "EU": ("€", 0.92),
             "DE": ("€", 0.92), "FR": ("€", 0.92), "NL": ("€", 0.92), "CA": ("CA$", 1.35),
             "AU": ("A$", 1.5)}  # fmt: skip
_VARIANT_REGIONS = ("EU", "US", "UK", "DE", "CA", "AU", "FR", "US-CA", "NL")
_EU = {"EU", "DE", "FR", "NL"}
_OWNERS = ("Customer Care Policy Team", "Product Team", "Legal", "Logistics Team", "Service Operations",
           "Finance Team", "Retail Operations", "Category Management")  # fmt: skip
_TODAY = date(2026, 11, 25)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _a(noun: str) -> str:
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


# Sentences that fill a section around its facts, one a line, grouped by [topic]. {placeholders} come from the
# document; {n} and {m} are drawn. [general] fills policies, [product] fills product documents.
_POOL_TEXT = """
[general]
Agents record the outcome and the reason in the case notes before closing the case.
When in doubt, agents approve the request and flag the case for a supervisor instead of refusing it.
Customers are told the outcome by message and in their account within one business day.
Store colleagues apply the same rules at the counter and use the same case tool.
Nothing in this section limits the customer's statutory rights.
Exceptions need a team leader's approval, recorded in the case with the reason.
The rule applies to orders placed online, by phone and in store.
An order number, a receipt or the payment card used is enough as proof of purchase.
Marketplace orders sold by other sellers follow that seller's terms, not this document.
Business customers with a trade account follow their contract where it differs.
Agents quote the figures in this section exactly and never round them.
If a customer disputes the outcome, the case goes to the second-line team within {n} business days.
Customers with accessibility needs can ask for the whole process to be handled by phone.
Gift recipients follow the same rules, using the gift receipt in place of the order number.
Agents must not promise anything this document does not provide for.
The customer can follow progress in their account under Orders.
Cases that have waited more than {n} days are reviewed every morning by the team lead.
Customers who contact us twice about the same case are passed to a named agent.
Requests made through social media are moved to a private chat before any order details are shared.
The contact centre answers questions about {plural} every day from 8 am to 8 pm.
[product]
The user manual of the {name} can be downloaded as a PDF from the product page.
Store colleagues can demonstrate the {name} on request.
Registering the {name} in the customer account speeds up warranty claims.
The serial number of the {name} is printed on a label under the base.
Design changes to {plural} are announced in the product notes for agents.
Customers often compare the {name} with other {plural} in the range; quote the figures given here.
[tech]
Figures are measured on a production unit at room temperature.
Power is the rated input; most programs draw less.
Agents quoting the {cap} should use the figure in this table, not the one on older packaging.
Noise is measured at 1 m at the highest setting.
{An_name} bought in one region must not be used with a voltage converter in another.
Weights are given without accessories and packaging.
Dimensions are given with the lid closed and handles folded.
At least {m}% of the housing by weight is recycled plastic.
Colour names follow the online shop; the SKU suffix tells them apart.
[box]
Keep the packaging inserts until the return period has ended; they protect the parts in transit.
Accessories sold separately are listed on the product page.
Store colleagues check the contents against this list at the counter.
The quick start guide is printed in {n} languages.
If a part is missing from a new box, the customer reports it within 14 days and we send it free of charge.
The packaging is cardboard and paper pulp only and can go in household paper recycling.
Gift boxes of the {name} sold in the holiday season contain the same items.
[care]
Damage caused by skipping these steps is not covered by the warranty.
Let the appliance cool completely before cleaning it.
Dry all parts before reassembling them, so no water gets into the electronics.
Customers in hard-water areas should clean the {name} more often.
A soft brush reaches the corners that a cloth misses.
Mild washing-up liquid is enough; solvents damage the seals.
Store the {name} with the lid open so that it dries completely.
Care videos for {plural} are linked from the product page.
[errors]
If a code comes back after the fix, the agent opens a warranty claim and notes the code.
Codes not listed here are service codes; ask the customer for a photo of the display.
Most faults clear after unplugging the appliance for a minute.
Never ask a customer to open the housing to clear a fault.
A blinking display without a code usually means demo mode; hold the power button for {n} seconds.
The service tool shows the last five codes when the {name} is checked at a service counter.
Customers also find these codes on the inside cover of the manual.
[parts]
Parts are dispatched within 2 business days and can be collected in store.
Parts of other {plural} do not fit this model even when they look alike.
Prices include tax; delivery of spare parts is free above the standard threshold.
Agents should quote the part number so the customer gets the right part.
Parts bought separately carry a warranty of their own of {n} months.
Customers with a CarePlus plan receive worn parts free of charge.
[safety]
Repeated triggering of the overheat protection may point to a faulty thermostat.
Keep the appliance away from the edge of the worktop and out of reach of children.
Safety features are tested on every unit at the end of the production line.
Customers must not bypass a safety switch; agents escalate any report that one failed.
The {name} meets the household appliance safety standards of every market where it is sold.
The power cord must not hang over the edge of the worktop.
[energy]
Switching the appliance off at the wall saves the standby power completely.
Energy figures follow the harmonised test standard for this type of appliance.
Eco mode lowers the energy use by about a fifth at the cost of a longer cycle.
The product label in store shows the same class.
Energy use depends on the load, the program and the starting temperature.
[window]
The day of delivery counts as day 0.
For orders delivered in several parcels, the window starts with the last parcel.
A return is on time if it is started in the returns portal on or before the last day.
Items replaced under warranty do not start a new window unless the replacement is faulty on arrival.
Loyalty tiers do not extend the window.
Click-and-collect orders count from the day they are collected.
Agents see the last return day on the order screen.
Late requests are declined politely and pointed to the warranty process if the product is faulty.
[restock]
Missing accessories are deducted at their current list price.
Visible wear beyond testing means the item is not in a resalable state.
Trying an appliance out once or twice counts as normal testing.
Packaging that was opened carefully does not count against the customer.
The deduction is shown on the return confirmation before the customer sends the parcel.
A supervisor may waive a deduction once per customer per year.
[ship]
Tracked drop-off points are listed in the returns portal.
We are not responsible for parcels sent back with another carrier.
Labels can be printed at home or shown as a QR code at the drop-off counter.
Return parcels should be packed so that the item cannot move.
In-store returns need no label and cost nothing.
[refund]
Banks usually need a few more business days to show the credit.
Refunds go back to the payment method used for the order.
Gift card payments are refunded to a new gift card.
Outbound shipping is refunded only if the whole order is returned.
The refund reference is sent to the customer so they can trace it with their bank.
[warranty]
A repaired or replaced product is covered for the rest of the original period or 90 days, whichever is longer.
Discontinued models stay covered for their full period.
Cosmetic damage that does not affect function is not covered.
Products repaired by anyone other than an authorised service partner lose the cover.
Repaired products are sent back free of charge by standard delivery.
Where a part is no longer available, we replace the product with one of equal or higher value.
[service]
Service counters are open during store hours, except on public holidays.
The booking tool warns the agent when a slot is less than 24 hours away.
Customers receive the booking reference by message and in their account.
Devices left for repair are tagged with the booking reference at the counter.
The technician's report is added to the customer's account when the repair is done.
Customers are asked to remove personal accessories before handing the appliance in.
[plan]
A plan belongs to the appliance, not the customer, and moves with it to a new owner.
Plans bought in store can be managed online with the plan number.
Breakdown cover starts when the warranty ends; accidental damage cover starts on the day of purchase.
Claims are made through the service portal or by phone.
A replacement under the plan ends the plan; a new plan can be bought for the replacement.
[delivery]
Two-person crews call 30 minutes before they arrive.
Old appliances are recycled by a licensed partner.
The delivery slot is confirmed by message the evening before.
Crews carry appliances up to two flights of stairs where there is no lift.
Deliveries are made Monday to Saturday.
[faq]
More answers are in the product sheet.
Support chat is open every day.
Agents can send this answer as a link.
The manual has a page on this as well.
A short video on the product page shows how it works.
If the answer does not help, the agent opens a case with the serial number of the {name}.
This answer applies to every colour of the {name}.
Customers asking this often ask about the warranty of {plural} as well.
"""


def _pools(text: str) -> dict[str, tuple[str, ...]]:
    pools: dict[str, list[str]] = {}
    topic = ""
    for line in text.strip().splitlines():
        if line.startswith("["):
            topic = line.strip("[]")
            pools[topic] = []
        else:
            pools[topic].append(line)
    return {topic: tuple(lines) for topic, lines in pools.items()}


_POOLS = _pools(_POOL_TEXT)


@dataclass
class _Section:
    heading: str
    body: str
    asks: list[str] = field(default_factory=list)
    """Questions answered here and nowhere else in the corpus."""


class _Writer:
    """Text for one document: each section's facts, filled with sentences none of which repeats in the document."""

    def __init__(self, rng: random.Random, region: str, words: tuple[int, int], **context: str) -> None:
        self.rng = rng
        self.region = region
        self.words = words
        self.where = f" in {REGION_NAMES[region]}" if region != "global" else ""
        self.context = context
        self.used: set[str] = set()

    def money(self, usd: float, cents: bool = True) -> str:
        symbol, rate = _CURRENCY[self.region]
        value = usd * rate
        if not cents:
            return f"{symbol}{max(1, round(value)):,}"
        return f"{symbol}{max(1, int(value)) + self.rng.choice((0.0, 0.49, 0.95, 0.99)):,.2f}"

    def section(self, headings: str, body: str, *asks: str, **facts: object) -> _Section:
        """A section under one of ``headings``, answering one question from each group of ``asks``.

        Headings and question groups are ``|``-separated templates over the document's context and ``facts``.
        """
        values = {**self.context, "where": self.where, **facts}
        heading = self.rng.choice(headings.split("|")).format(**values)
        return _Section(heading, body, [self.rng.choice(group.split("|")).format(**values) for group in asks])

    def fill(self, blocks: list[str], topic: str, short: bool = False) -> str:
        """Blocks, then sentences of ``topic`` and general ones until the section holds about the target words."""
        low, high = self.words
        target = self.rng.randint(low // 2, high // 2) if short else self.rng.randint(low, high)
        count = sum(len(b.split()) for b in blocks)
        general = _POOLS["product" if "name" in self.context else "general"]
        ordered = [*self.rng.sample(_POOLS[topic], len(_POOLS[topic])), *self.rng.sample(general, len(general))]
        extra: list[str] = []
        for template in ordered:
            if count >= target:
                break
            if template in self.used:
                continue
            self.used.add(template)
            sentence = template.format(n=self.rng.randint(2, 9), m=self.rng.randint(10, 40), **self.context)
            extra.append(sentence)
            count += len(sentence.split())
        if extra:
            blocks.append(" ".join(extra))
        return "\n\n".join(blocks)


# -- documents, their sections and the questions each section answers ---------------------------------------------
@dataclass
class _Doc:
    doc_id: str
    region: str
    path: str
    front: dict[str, object]
    title: str
    intro: str
    sections: list[_Section]
    ask: bool = True
    """False for superseded, future and discontinued versions: nothing is asked about what is not served."""


@dataclass(frozen=True)
class _Product:
    category: _Category
    name: str
    product_id: str
    sku: str
    colours: tuple[str, ...]


def _product(rng: random.Random, used: set[str], lines: dict[str, list[str]]) -> _Product:
    """A new product; most share their series with siblings (Brisa Kettle K3, K3 Pro, K5) as in a real range."""
    category = rng.choice(CATEGORIES)
    for attempt in range(1_000_000):
        series = rng.choice(lines[category.key] if attempt < 20 else SERIES)
        model = f"{category.code[0]}{rng.randint(1, 9 + attempt // 20)}{rng.choice(MODEL_SUFFIXES)}"
        name = f"{series} {category.singular.title()} {model}"
        if name not in used:
            used.add(name)
            break
    product_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    sku = f"{category.code}-{series[:3].upper()}{model.split()[0][1:]}{rng.randint(10, 99)}"
    return _Product(category, name, product_id, sku, tuple(rng.sample(COLOURS, rng.randint(1, 3))))


def _spec_sections(w: _Writer, p: _Product) -> list[_Section]:
    rng, c = w.rng, p.category
    label, unit, low, high = c.capacity
    capacity = round(rng.uniform(low, high), 1) if unit in ("L", "kg") else rng.randint(int(low), int(high))
    power = rng.randrange(c.power[0], c.power[1] + 1, 5 if c.power[1] < 200 else 50)
    us = w.region in ("US", "US-CA", "CA")
    if us:
        power = max(10, int(power * 0.75) // 10 * 10)
    size = f"{rng.randint(15, 90 if c.bulky else 45)} × {rng.randint(12, 60)} × {rng.randint(12, 60)} cm"
    rows = [("Product id", f"`{p.product_id}`"),
            ("SKUs", ", ".join(f"{p.sku}-{colour[:2].upper()} ({colour})" for colour in p.colours)),
            ("Power", f"{power} W"), (label, f"{capacity} {unit}"),
            ("Weight", f"{round(rng.uniform(0.6, 4.0) * (12 if c.bulky else 1), 1)} kg"),
            ("Noise level", f"{rng.randint(38, 92)} dB(A)"),
            ("Voltage", "120 V / 60 Hz" if us else "220-240 V / 50 Hz"), ("Dimensions (H × W × D)", size),
            ("Cable length", f"{rng.choice((0.8, 1.0, 1.2, 1.5, 1.8))} m")]  # fmt: skip
    tech = w.section(
        "Technical specifications|Specifications|Technical data",
        w.fill([_table(("Attribute", "Value"), rows)], "tech"),
        "What is the wattage of the {name}?|{name} power rating|How many watts is {sku}?",
        "How heavy is the {name}?|{name} weight in kg",
        "What is the {cap} of the {name}?|{name} {cap}",
        "Which colours does the {name} come in?|{name} colour options",
    )

    def box() -> _Section:
        items = [f"{p.name} main unit", *rng.sample(c.parts, min(len(c.parts), rng.randint(2, 4))),
                 "Quick start guide", "Safety leaflet"]  # fmt: skip
        listing = "\n".join(f"{i}. {_cap(item)}" for i, item in enumerate(items, 1))
        complete = f"All {len(items)} items must come back for a return to count as complete."
        return w.section(
            "What's in the box|In the box|Box contents",
            w.fill([listing, complete], "box"),
            "What comes in the box with the {name}?|{name} box contents|Is {item} included with the {name}?",
            item=_a(items[1]),
        )

    def care() -> _Section:
        safe = "dishwasher-safe on the top rack" if rng.random() < 0.5 else "not dishwasher-safe; wash it by hand"
        facts = {"part": rng.choice(c.parts), "consumable": rng.choice(c.consumables)}
        bullets = (f"- The {facts['part']} is {safe}.\n"
                   f"- Renew the {facts['consumable']} every {rng.choice((1, 2, 4, 6, 8, 12))} weeks of regular use.\n"
                   "- Wipe the housing with a damp cloth; never immerse the main unit in water.\n"
                   "- Do not use abrasive cleaners or scouring pads on any surface.")  # fmt: skip
        return w.section(
            "Care and cleaning|Cleaning and maintenance|Looking after your {singular}",
            w.fill([bullets], "care"),
            "Can I put the {part} of the {name} in the dishwasher?|How often do I need to replace the {consumable} "
            "on my {name}?|{name} {consumable} replacement interval",
            **facts,
        )

    def errors() -> _Section:
        meanings = [f"the {rng.choice(c.parts)} is not fitted correctly; refit it until it clicks",
                    f"the motor or element overheated; unplug it and let it cool for {rng.randint(10, 40)} minutes",
                    "a temperature sensor fault; stop using it and open a warranty claim",
                    "the supply voltage is too low; try another socket without an extension lead",
                    f"the {rng.choice(c.parts)} is blocked; clean it and restart",
                    "the lid or door is open; close it firmly",
                    "a control board fault; unplug it for 60 seconds, then book a repair if it returns",
                    f"the {rng.choice(c.consumables)} need renewing; then hold the start button for 3 s"]  # fmt: skip
        codes = [f"E{n}" for n in rng.sample(range(1, 10), 4)]
        bullets = "\n".join(
            f"- **{code}**: {meaning}." for code, meaning in zip(codes, rng.sample(meanings, 4), strict=True)
        )
        return w.section(
            "Troubleshooting and error codes|Error codes|Troubleshooting",
            w.fill([f"The display of the {p.name} shows these codes:", bullets], "errors"),
            "What does error {code} mean on the {name}?|{name} showing {code}|My {name} flashes {code}, what should "
            "I do?|{sku} error {code}",
            code=codes[0],
        )

    def parts() -> _Section:
        chosen = rng.sample(c.parts, min(len(c.parts), rng.randint(3, 5)))
        price = 3 if c.bulky else 1
        rows = [(_cap(x), f"{c.code}-SP{rng.randint(100, 999)}", w.money(rng.uniform(6, 60) * price)) for x in chosen]
        years = f"Spare parts for the {p.name} remain available for at least {rng.choice((5, 7, 8, 10))} years."
        return w.section(
            "Spare parts and prices|Spare parts|Replacement parts",
            w.fill([_table(("Part", "Part number", "Price"), rows), years], "parts"),
            "How much is a replacement {part} for the {name}?|{name} {part} price|part number for the {part} of {sku}",
            part=chosen[0],
        )

    def safety() -> _Section:
        feature = rng.choice(("child lock", "auto shut-off", "tip-over switch", "boil-dry protection",
                              "cool-touch housing", "lid interlock"))  # fmt: skip
        bullets = (f"- **{_cap(feature)}** is fitted to every unit.\n- Overheat protection switches the {p.name} off; "
                   f"it restarts after about {rng.randint(5, 45)} minutes.\n- It goes to standby after "
                   f"{rng.choice((5, 10, 15, 30))} minutes without use.")  # fmt: skip
        return w.section(
            "Safety features|Safety",
            w.fill([bullets], "safety"),
            "How long does the {name} need to cool down after it overheats?|{name} overheat restart time|Does the "
            "{name} have {feature}?",
            feature=_a(feature),
        )

    def energy() -> _Section:
        kwh = rng.randint(20, 300) if c.bulky else round(rng.uniform(0.05, 1.5), 2)
        text = (f"The {p.name} draws {rng.choice((0.3, 0.4, 0.5, 0.8, 1.0))} W in standby and carries energy class "
                f"{rng.choice('ABCD')}. A typical cycle uses {kwh} kWh.")  # fmt: skip
        return w.section(
            "Energy use|Energy and standby",
            w.fill([text], "energy"),
            "What is the standby power of the {name}?|{name} energy class|How much electricity does the {name} use "
            "per cycle?",
        )

    optional: list[Callable[[], _Section]] = [box, care, errors, parts, safety, energy]
    return [tech, *(make() for make in rng.sample(optional, rng.choice((3, 4, 4, 4))))]


def _faq_sections(w: _Writer, p: _Product) -> list[_Section]:
    rng, c = w.rng, p.category
    app = rng.choice(("HomeLink", "Northstar", "KitchenPal", "CasaConnect"))
    works = "connects to" if rng.random() < 0.5 else "does not connect to"
    part = rng.choice(c.parts)
    qa = [
        ("Does it work with an app?", f"The {p.name} {works} the {app} app.",
         "Does the {name} work with the {app} app?|{name} app support"),
        ("Why does it smell the first time?", f"A new {p.name} can smell for the first uses; run it empty for "
         f"{rng.randint(3, 20)} minutes.", "My new {name} smells when I use it|{name} burning smell first use"),
        ("Which accessories fit?", f"The {part} of the {p.name} fits only this model; the {part} of older "
         f"{c.plural} does not.", "Will an older {part} fit the {name}?"),
        ("Can I use it abroad?", f"The {p.name} sold here is built for the local voltage; using it abroad voids the "
         "warranty.", "Can I take my {name} abroad?"),
        ("How long does it take to get ready?", f"The {p.name} is ready in about {rng.randint(2, 12)} minutes from "
         "cold.", "How long does the {name} take to heat up?|{name} warm-up time"),
    ]  # fmt: skip
    out = []
    for heading, text, asks in rng.sample(qa, 4):
        heading = f"{heading[:-1]} ({p.name})?" if rng.random() < 0.3 else heading
        out.append(w.section(heading, w.fill([text], "faq", short=True), asks, app=app, part=part))
    return out


Extra = tuple[str, str, str, str]
"""Headings, text, filler topic and questions of an optional section."""


def _with_extras(w: _Writer, first: list[_Section], extras: list[Extra]) -> list[_Section]:
    chosen = w.rng.sample(extras, w.rng.randint(2, len(extras)))
    return first + [w.section(headings, w.fill([text], topic), asks) for headings, text, topic, asks in chosen]


def _returns_sections(w: _Writer, c: _Category) -> list[_Section]:
    rng = w.rng
    eu = w.region in _EU
    days = 14 if eu else rng.choice((14, 21, 30, 30, 45, 60, 90))
    fee = 0 if eu else rng.choice((5, 10, 15, 20, 25))
    if eu:
        window = (f"Consumers may withdraw within **14 days** of delivery without giving a reason; a goodwill period "
                  f"extends returns of {c.plural} to **{days + rng.choice((16, 30))} days**.")  # fmt: skip
    else:
        window = (f"{_cap(c.plural)} can be returned within **{days} days** of delivery or purchase. Those bought "
                  f"between 1 November and 31 December can be returned until **{days + rng.choice((15, 30))} "
                  "days** after delivery.")  # fmt: skip
    if fee:
        restock = (f"Opened {c.plural} that are not defective carry a **restocking fee of {fee}%** of the price "
                   f"paid. Unopened {c.plural} and faulty ones are refunded in full.")  # fmt: skip
    else:
        restock = (f"No restocking fee is charged on {c.plural}; a deduction for diminished value is possible when "
                   "an item was handled beyond testing it.")  # fmt: skip
    first = [
        w.section("Return window|Time limit for returns", w.fill([window], "window"),
                  "How many days do I have to return {a_singular}{where}?|return window {plural}{where}|holiday "
                  "return period for {plural}{where}|Can I still return {a_singular} I bought {late} days ago{where}?",
                  late=days - 3),
        w.section("Restocking fee|Condition and restocking fee", w.fill([restock], "restock"),
                  "restocking fee {singular}{where}|Is there a restocking fee on an opened {singular}{where}?|How "
                  "much do you keep when I return an opened {singular}{where}?"),
    ]  # fmt: skip
    collect = "A two-person collection is booked for the return. " if c.bulky else ""
    label = w.money(rng.uniform(4, 12) * (4 if c.bulky else 1))
    nonreturnable = "\n".join(f"- Opened {x}" for x in c.consumables) + "\n- Items sold as final sale\n- Engraved items"
    extras: list[Extra] = [
        ("Return shipping and label fees|Return shipping",
         f"{collect}The prepaid return label for {c.plural} costs **{label}**, deducted from the refund unless the "
         f"item is faulty. Parcels are dropped off within {rng.choice((5, 7, 10))} days of creating the label.",
         "ship", "return label cost {singular}{where}|Do I pay for return shipping on {a_singular}{where}?"),
        ("Refund timing|Refunds",
         f"Returned {c.plural} are inspected within {rng.choice((2, 3, 5))} business days, and the refund is issued "
         f"within **{rng.choice((3, 5, 7, 10))} business days** of inspection.",
         "refund", "How long does the refund take after returning {a_singular}{where}?|{singular} refund time{where}"),
        ("Items that cannot be returned|Non-returnable items", nonreturnable, "restock",
         f"Can I return opened {c.consumables[0]} for my {{singular}}?|non-returnable {{singular}} items{{where}}"),
        ("Exchanges",
         f"{_cap(c.plural)} can be exchanged for another colour or model within **{rng.choice((7, 14, 30))} days**; "
         "any price difference is charged or refunded.",
         "window", "Can I exchange {a_singular} for a different colour{where}?|{singular} exchange period{where}"),
    ]  # fmt: skip
    return _with_extras(w, first, extras)


def _warranty_sections(w: _Writer, c: _Category) -> list[_Section]:
    rng = w.rng
    years = rng.choice((1, 2, 2, 3, 5))
    part = rng.choice(c.parts)
    legal = " It runs beside the **2-year legal guarantee** of conformity, which it never shortens."
    motor = years + rng.choice((2, 3, 5, 8))
    period = (f"{_cap(c.plural)} carry a **{years}-year warranty** from delivery. The motor, compressor or heating "
              f"element is covered for **{motor} years**.{legal if w.region in _EU else ''}")  # fmt: skip
    first = [
        w.section("Warranty period|How long the warranty lasts", w.fill([period], "warranty"),
                  "How long is the warranty on {a_singular}{where}?|{singular} warranty length{where}|How many years "
                  "is the motor of {a_singular} covered{where}?"),
    ]  # fmt: skip
    fee = w.money(rng.choice((20, 25, 30, 45, 60)), cents=False)
    extras: list[Extra] = [
        ("What is covered|Coverage",
         f"- Defects in materials and workmanship under household use\n- The {part} if it cracks or fails without "
         f"impact\n- Electronics and switches\n\nNot covered: normal wear of {', '.join(c.consumables)}, drops, "
         "misuse and commercial use.",
         "warranty",
         f"Is the {part} of my {{singular}} covered by the warranty?|{{singular}} warranty coverage {part}"),
        ("Making a claim|How to claim",
         f"1. The customer starts the claim in the service portal with the order number.\n2. The agent runs the "
         f"basic checks for {c.plural}.\n3. The service centre assesses the product within "
         f"**{rng.choice((5, 7, 10, 14))} business days** of receipt.\n4. We repair, replace or refund.",
         "warranty", "How long does the service centre take to assess {a_singular} warranty claim{where}?|"
         "{singular} warranty claim steps{where}"),
        ("Repairs after the warranty|Out-of-warranty repairs",
         f"After the warranty, a repair diagnosis for {c.plural} costs **{fee}**, credited against the repair if the "
         "customer goes ahead.",
         "service", "How much is an out-of-warranty diagnosis for {a_singular}{where}?|{singular} repair diagnostic "
         "fee{where}"),
    ]  # fmt: skip
    return _with_extras(w, first, extras)


def _plan_sections(w: _Writer, c: _Category) -> list[_Section]:
    rng = w.rng
    bands = [(100, 1.0), (300, 1.6), (800, 2.4)] if not c.bulky else [(500, 2.0), (1200, 3.0), (3000, 4.5)]
    rows, low = [], 0
    for high, factor in bands:
        rows.append((f"{w.money(low, False)}-{w.money(high, False)}", w.money(12 * factor * rng.uniform(0.9, 1.2)),
                     w.money(19 * factor * rng.uniform(0.9, 1.2))))  # fmt: skip
        low = high + 1
    table = _table(("Product price", "2-year plan", "3-year plan"), rows)
    sold = f"CarePlus for {c.plural} is sold within 30 days of buying the appliance."
    first = [
        w.section("Plan prices", w.fill([table, sold], "plan"),
                  "How much is a 3-year CarePlus plan for {a_singular}{where}?|CarePlus price {singular}{where}"),
    ]  # fmt: skip
    claims = rng.choice((1, 2, 3))
    excess = w.money(rng.choice((0, 15, 25, 35, 49)), cents=False)
    extras: list[Extra] = [
        ("What the plan covers",
         f"The plan covers accidental damage such as drops and spills, up to **{claims} claim"
         f"{'s' if claims > 1 else ''} a year**, and mechanical breakdown after the warranty.",
         "warranty", "How many accidental damage claims a year does CarePlus allow for {plural}?"),
        ("Claim excess|Excess per claim",
         f"Each CarePlus claim on {_a(c.singular)} carries an excess of **{excess}**, paid when the repair is booked.",
         "plan", "CarePlus excess {singular}{where}|What do I pay per CarePlus claim on {a_singular}?"),
        ("Cancelling a plan",
         f"A CarePlus plan for {_a(c.singular)} can be cancelled for a full refund within "
         f"**{rng.choice((14, 30, 45))} days**; after that the refund is pro rata for the months left.",
         "refund", "Can I cancel CarePlus on my {singular} and get my money back?|cancel CarePlus {singular}{where}"),
    ]  # fmt: skip
    return _with_extras(w, first, extras)


def _delivery_sections(w: _Writer, c: _Category) -> list[_Section]:
    rng = w.rng
    rows = [("Standard", f"{rng.randint(3, 7)}-{rng.randint(8, 12)} business days", w.money(rng.uniform(20, 40))),
            ("Next day", "Next business day", w.money(rng.uniform(45, 70))),
            ("Named day", "Chosen day, 7 am-7 pm", w.money(rng.uniform(35, 55)))]  # fmt: skip
    first = [
        w.section("Delivery charges", w.fill([_table(("Service", "Delivery time", "Charge"), rows)], "delivery"),
                  "next day delivery cost for {a_singular}{where}|How much is delivery of {a_singular}{where}?"),
    ]  # fmt: skip
    extras: list[Extra] = [
        ("Installation service",
         f"Installation of {_a(c.singular)} costs **{w.money(rng.uniform(60, 140))}** and includes connecting it, a "
         "test run and taking the packaging away.",
         "delivery", "How much do you charge to install {a_singular}{where}?"),
        ("Removal of old appliances",
         f"We take away an old {c.singular} on delivery for **{w.money(rng.uniform(15, 45))}** and recycle it.",
         "delivery", "Can you take my old {singular} away and what does it cost{where}?"),
        ("Missed deliveries",
         f"A {c.singular} delivery can be rebooked free of charge up to **{rng.choice((24, 48, 72))} hours** before "
         f"the slot; after that a redelivery costs {w.money(rng.uniform(20, 35))}.",
         "delivery", "What if I miss the delivery of my {singular}{where}?|{singular} redelivery fee{where}"),
    ]  # fmt: skip
    return _with_extras(w, first, extras)


def _repair_sections(w: _Writer, c: _Category) -> list[_Section]:
    rng = w.rng
    steps = ("1. Confirm the model and serial number.\n2. Check the warranty status in the service tool.\n"
             "3. Offer the next three slots at the nearest service counter.\n"
             "4. Send the booking reference by message.")  # fmt: skip
    takes = f"Repairs of {c.plural} take about **{rng.choice((5, 7, 10, 14))} business days** from drop-off."
    first = [
        w.section("Booking steps", w.fill([steps, takes], "service"),
                  "How long does {a_singular} repair take{where}?|{singular} repair turnaround{where}"),
    ]  # fmt: skip
    extras: list[Extra] = [
        ("Loan appliances",
         f"A loan {c.singular} is available during the repair against a deposit of "
         f"**{w.money(rng.choice((20, 30, 50, 75)), False)}**, refunded when it comes back.",
         "service", "Can I borrow {a_singular} while mine is repaired{where}?|loan {singular} deposit{where}"),
        ("Uncollected repairs",
         f"Repaired {c.plural} not collected within **{rng.choice((30, 60, 90))} days** are recycled after two "
         "reminders.",
         "service", "How long will you keep my repaired {singular} if I don't collect it?"),
    ]  # fmt: skip
    return _with_extras(w, first, extras)


_TOPICS: dict[str, tuple[str, str, Callable[[_Writer, _Category], list[_Section]]]] = {
    "returns": ("policy", "Returns Policy: {Plural}", _returns_sections),
    "warranty": ("policy", "Warranty for {Plural}", _warranty_sections),
    "careplus": ("reference", "CarePlus Protection Plan for {Plural}", _plan_sections),
    "delivery": ("policy", "Delivery and Installation of {Plural}", _delivery_sections),
    "repair": ("procedure", "Booking a Repair: {Plural}", _repair_sections),
}


def _front(
    doc_id: str,
    title: str,
    doc_type: str,
    region: str,
    version: int,
    start: date,
    owner: str,
    products: list[str] | None = None,
    end: date | None = None,
    risk: str = "low",
) -> dict[str, object]:
    front: dict[str, object] = {"doc_id": doc_id, "title": title, "doc_type": doc_type, "region": region}
    if products:
        front["products"] = products
    front |= {"version": version, "effective_from": start}
    if end:
        front["effective_to"] = end
    front |= {"review_by": start + timedelta(days=545), "owner": owner, "risk_tier": risk}
    return front


def _start(rng: random.Random) -> date:
    return date(2025, 1, 1) + timedelta(days=rng.randint(0, 600))


def _region_title(title: str, region: str) -> str:
    return f"{title} ({_TITLE_REGION[region]})" if region != "global" else title


def _product_docs(
    rng: random.Random, used: set[str], lines: dict[str, list[str]], words: tuple[int, int], faq: bool
) -> list[_Doc]:
    p = _product(rng, used, lines)
    c = p.category
    doc_id = f"{p.product_id}-{'faq' if faq else 'spec'}"
    title = f"{p.name}: Frequently Asked Questions" if faq else f"{p.name} Product Specification"
    discontinued = not faq and rng.random() < 0.04  # ended before today: on disk, never served
    docs = []
    for region in ["global"] + (["US"] if not faq and rng.random() < 0.15 else []):
        w = _Writer(
            rng,
            region,
            words,
            name=p.name,
            sku=p.sku,
            singular=c.singular,
            plural=c.plural,
            cap=c.capacity[0].lower(),
            An_name=_cap(_a(p.name)),
        )
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 500)) if discontinued else _start(rng)
        intro = (
            f"This sheet covers the {p.name} ({p.sku}), {_a(c.singular)} in our range." if rng.random() < 0.5 else ""
        )
        front = _front(
            doc_id,
            _region_title(title, region),
            "faq" if faq else "product_spec",
            region,
            1,
            start,
            "Product Team",
            [p.product_id],
            date(2026, 6, 30) if discontinued else None,
        )
        sections = _faq_sections(w, p) if faq else _spec_sections(w, p)
        suffix = "" if region == "global" else "-" + region.lower()
        docs.append(
            _Doc(
                doc_id,
                region,
                f"products/{doc_id}{suffix}.md",
                front,
                _region_title(title, region),
                intro,
                sections,
                ask=not discontinued,
            )
        )
    return docs


def _policy_docs(rng: random.Random, topic: str, c: _Category, words: tuple[int, int]) -> list[_Doc]:
    doc_type, pattern, build = _TOPICS[topic]
    doc_id = f"{topic}-{c.key}"
    title = pattern.format(Plural=c.plural.title())
    risk = "regulated" if topic == "warranty" else rng.choice(("low", "medium"))
    docs = []
    for region in ["global", *rng.sample(_VARIANT_REGIONS, rng.choice((0, 0, 1, 1, 2, 3)))]:
        region_title = _region_title(title, region)
        version, start, owner = rng.randint(1, 4), _start(rng), rng.choice(_OWNERS)
        stem = f"{topic}/{c.key}{'' if region == 'global' else '-' + region.lower()}"
        sold = "everywhere" if region == "global" else "in " + REGION_NAMES[region]
        intro = f"This document applies to {c.plural} sold {sold}."
        context = {"singular": c.singular, "plural": c.plural, "a_singular": _a(c.singular)}

        if version > 1 and rng.random() < 0.4:  # the version it superseded, still on disk
            old = start - timedelta(days=rng.randint(90, 400))
            docs.append(
                _Doc(
                    doc_id,
                    region,
                    f"{stem}-v{version - 1}.md",
                    _front(doc_id, region_title, doc_type, region, version - 1, old, owner, risk=risk),
                    region_title,
                    intro,
                    build(_Writer(rng, region, words, **context), c),
                    ask=False,
                )
            )
        sections = build(_Writer(rng, region, words, **context), c)
        docs.append(
            _Doc(
                doc_id,
                region,
                f"{stem}.md",
                _front(doc_id, region_title, doc_type, region, version, start, owner, risk=risk),
                region_title,
                intro if rng.random() < 0.5 else "",
                sections,
            )
        )
        if rng.random() < 0.04:  # announced and not yet in force; it keeps the headings questions are asked under
            day = _TODAY + timedelta(days=rng.randint(30, 200))
            note = _Section(
                "What changes in this version",
                f"From {day.isoformat()} this version replaces version "
                f"{version}: the contact details of the {owner} were updated and the wording was "
                "simplified. The rules and figures below are unchanged.",
            )
            docs.append(
                _Doc(
                    doc_id,
                    region,
                    f"{stem}-v{version + 1}.md",
                    _front(doc_id, region_title, doc_type, region, version + 1, day, owner, risk=risk),
                    region_title,
                    intro,
                    [note, *sections],
                    ask=False,
                )
            )
    return docs


def _plans(rng: random.Random, documents: int, words: tuple[int, int]) -> list[_Doc]:
    """Half product sheets and FAQs, half category policies with their variants and versions, in a mixed order."""
    docs: list[_Doc] = []
    used: set[str] = set()
    lines = {c.key: rng.sample(SERIES, 3) for c in CATEGORIES}
    slots = [(t, c) for t in _TOPICS for c in CATEGORIES if t != "delivery" or c.bulky]
    rng.shuffle(slots)
    while len(docs) < documents:
        roll = rng.random()
        if roll < 0.5 or not slots:
            docs += _product_docs(rng, used, lines, words, faq=roll < 0.1)
        else:
            docs += _policy_docs(rng, *slots.pop(), words)
    return docs[:documents]


def _render(doc: _Doc) -> str:
    lines = ["---"]
    for key, value in doc.front.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {item}" for item in value]
        elif isinstance(value, date):
            lines.append(f"{key}: {value.isoformat()}")
        else:
            lines.append(f'{key}: "{value}"' if key in ("title", "owner") else f"{key}: {value}")
    lines += ["---", "", f"# {doc.title}", ""]
    if doc.intro:
        lines += [doc.intro, ""]
    for section in doc.sections:
        lines += [f"## {section.heading}", "", section.body, ""]
    return "\n".join(lines)


def _ask_region(rng: random.Random, doc: _Doc, variants: dict[str, set[str]]) -> str:
    """The variant's own region, or a region whose fallback chain reaches this variant first."""
    own = variants[doc.doc_id]

    def served(region: str) -> str:
        while region not in own:
            region = REGION_TREE.get(region, "global")
        return region

    candidates = [r for r in ("global", *REGION_TREE) if served(r) == doc.region]
    return doc.region if rng.random() < 0.6 else rng.choice(candidates)


def write_corpus(folder: Path, documents: int, seed: int = 0) -> list[Question]:
    """Write ``documents`` policy files and ``regions.yaml`` into ``folder``; return the labelled questions.

    One question per document in force (none about superseded, future or discontinued ones), asked in a region
    whose fallback chain serves that document's variant.
    """
    rng = random.Random(seed)
    docs = _plans(rng, documents, (135, 175))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "regions.yaml").write_text(
        "# Each region falls back to its parent; regions not listed fall back to global.\n"
        + "".join(f"{child}: {parent}\n" for child, parent in REGION_TREE.items()),
        encoding="utf-8",
    )
    variants: dict[str, set[str]] = {}
    for doc in docs:
        variants.setdefault(doc.doc_id, set()).add(doc.region)
    questions: list[Question] = []
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        target = folder / doc.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_render(doc), encoding="utf-8")
        if not doc.ask:
            continue
        heading, text = rng.choice([(s.heading, text) for s in doc.sections for text in s.asks])
        region = _ask_region(rng, doc, variants)
        if (text, region) not in seen:
            seen.add((text, region))
            questions.append(Question(text, doc.doc_id, heading, region))
    return questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    questions = write_corpus(args.folder, args.documents, args.seed)
    seconds = time.perf_counter() - started
    files = list(args.folder.rglob("*.md"))
    words = sum(len(p.read_text(encoding="utf-8").split()) for p in files)
    print(f"{len(files)} documents, {words:,} words, {len(questions)} questions, written in {seconds:.2f} s")


if __name__ == "__main__":
    main()
