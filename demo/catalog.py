"""The demo shop's catalog as data: eight categories and sixty products, prices in minor units."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    name: str
    description: str
    price_minor: int
    # Stock before the demo's past sales: what is left is this less what those sold.
    stock: int


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    # One currency a category, so that a cart filled from one category can be checked out.
    currency_code: str
    items: tuple[Item, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Kitchen",
        "Cookware and tools for everyday cooking.",
        "USD",
        (
            Item(
                "Cast Iron Skillet 10in",
                "Pre-seasoned skillet that goes from hob to oven.",
                3499,
                120,
            ),
            Item("Chef's Knife 8in", "High-carbon stainless blade with a full tang.", 5999, 80),
            Item("Bamboo Cutting Board", "Large two-sided board with a juice groove.", 2499, 150),
            Item("Dutch Oven 5.5qt", "Enamelled cast iron for stews, bread and braises.", 8999, 60),
            Item(
                "Silicone Spatula Set", "Three heat-resistant spatulas, dishwasher safe.", 1299, 200
            ),
            Item(
                "Digital Kitchen Scale",
                "Weighs to the gram, up to 5 kg, with a tare button.",
                2199,
                140,
            ),
            Item("Stainless Mixing Bowls", "Nesting set of five with non-slip bases.", 2899, 110),
            Item("Pepper Mill", "Beechwood mill with an adjustable ceramic grinder.", 1899, 160),
        ),
    ),
    Category(
        "Coffee & Tea",
        "Beans, leaves and the gear to brew them, roasted and packed in Europe.",
        "EUR",
        (
            Item(
                "Ethiopia Yirgacheffe Beans 250g",
                "Light roast with notes of jasmine and lemon.",
                1290,
                300,
            ),
            Item("Colombia Huila Beans 1kg", "Medium roast, caramel and red apple.", 3490, 120),
            Item("Espresso Blend 500g", "Dark roast for a thick crema.", 1890, 220),
            Item("Japanese Sencha 100g", "Steamed green tea, grassy and sweet.", 1450, 180),
            Item("Earl Grey Loose Leaf 200g", "Black tea with bergamot oil.", 990, 250),
            Item("Pour-Over Dripper", "Ceramic cone dripper for size 02 filters.", 2490, 90),
            Item(
                "Gooseneck Kettle 1L", "Stainless kettle with a thermometer in the lid.", 4490, 70
            ),
        ),
    ),
    Category(
        "Home & Living",
        "Textiles, lighting and small things that make a room.",
        "USD",
        (
            Item("Linen Throw Blanket", "Stone-washed linen, 130 x 170 cm.", 7900, 70),
            Item("Ceramic Table Lamp", "Matte glaze base with a linen shade.", 6450, 50),
            Item("Soy Wax Candle", "Cedar and vetiver, about 50 hours of burn.", 2400, 260),
            Item("Wool Area Rug 5x8", "Hand-tufted New Zealand wool in oatmeal.", 24900, 25),
            Item("Glass Carafe Set", "One-litre carafe with two tumblers.", 3200, 130),
            Item("Cotton Bath Towels (2)", "600 gsm Turkish cotton, quick to dry.", 3800, 160),
            Item("Wall Clock", "Silent sweep movement, 30 cm oak frame.", 4500, 60),
            Item("Indoor Plant Pot", "Terracotta pot with a drainage saucer, 20 cm.", 1900, 190),
        ),
    ),
    Category(
        "Outdoor",
        "Gear for trails, camping and long days outside.",
        "USD",
        (
            Item("Trail Daypack 24L", "Water-resistant pack with a hydration sleeve.", 8900, 75),
            Item("Insulated Water Bottle", "Keeps drinks cold for 24 hours, 750 ml.", 3200, 240),
            Item("Two-Person Tent", "Freestanding, 1.9 kg, with two doors.", 22900, 30),
            Item("Headlamp 400lm", "Rechargeable, with a red night mode.", 3900, 140),
            Item(
                "Camping Stove", "Compact canister stove that boils a litre in 4 minutes.", 5400, 65
            ),
            Item("Merino Hiking Socks", "Cushioned crew socks, two pairs.", 2600, 220),
            Item("Trekking Poles", "Carbon, adjustable, with cork grips.", 11900, 40),
        ),
    ),
    Category(
        "Books",
        "Fiction, non-fiction and handsome editions.",
        "USD",
        (
            Item("The Art of Slow Cooking", "Hardcover, 120 recipes for the weekend.", 3200, 90),
            Item("A Field Guide to Birds", "Illustrated guide to 600 species.", 2800, 100),
            Item("Modern Python Patterns", "Paperback on writing clear, typed Python.", 4500, 120),
            Item("The Quiet Harbour", "A novel of a lighthouse keeper's last winter.", 1800, 150),
            Item(
                "Atlas of Remote Islands", "Fifty islands you will never visit, mapped.", 3500, 60
            ),
            Item("Stargazing for Beginners", "What to see each month, with sky charts.", 2200, 110),
            Item("Bread Every Day", "Sourdough and yeasted loaves, step by step.", 2900, 85),
            Item("A Short History of Maps", "How people drew the world, in 300 pages.", 2600, 70),
        ),
    ),
    Category(
        "Stationery",
        "Paper, pens and desk things from European makers.",
        "EUR",
        (
            Item("Dotted Notebook A5", "192 numbered pages of 100 gsm paper.", 1950, 300),
            Item(
                "Fountain Pen, Medium Nib",
                "Steel nib with a converter and two cartridges.",
                3400,
                120,
            ),
            Item("Gel Pens, Set of 6", "0.5 mm quick-drying ink in six colours.", 890, 400),
            Item("Leather Desk Pad", "Vegetable-tanned leather, 60 x 35 cm.", 5900, 45),
            Item("Weekly Planner 2027", "Undated layout, a week on two pages.", 2200, 180),
            Item("Brass Bookmark Set", "Three engraved bookmarks in a tin.", 1500, 160),
            Item("Watercolour Pad A4", "Cold-pressed 300 gsm, 12 sheets.", 1700, 130),
        ),
    ),
    Category(
        "Audio",
        "Headphones and speakers for home and away.",
        "USD",
        (
            Item(
                "Wireless Noise-Cancelling Headphones", "Over-ear, 30 hours of battery.", 24900, 55
            ),
            Item("True Wireless Earbuds", "Sweat-resistant, with a charging case.", 9900, 120),
            Item("Bluetooth Speaker", "Waterproof speaker with 12 hours of play.", 6900, 90),
            Item(
                "Bookshelf Speakers (Pair)", "Two-way passive speakers, walnut finish.", 29900, 20
            ),
            Item("USB Microphone", "Cardioid condenser for calls and podcasts.", 11900, 50),
            Item("Headphone Stand", "Aluminium stand with a cable hook.", 2900, 130),
            Item("Turntable", "Belt-driven, with a built-in phono preamp.", 27900, 18),
        ),
    ),
    Category(
        "Fitness",
        "Equipment for training at home.",
        "USD",
        (
            Item("Yoga Mat 6mm", "Non-slip natural rubber with alignment lines.", 6800, 110),
            Item("Adjustable Dumbbells", "Pair from 2.5 to 24 kg, quick dial.", 34900, 15),
            Item("Resistance Bands Set", "Five bands from light to extra heavy.", 2900, 200),
            Item("Foam Roller", "High-density, 45 cm, for recovery.", 2400, 150),
            Item("Jump Rope", "Ball-bearing handles, adjustable cable.", 1500, 230),
            Item("Kettlebell 16kg", "Cast iron with a powder-coated handle.", 5900, 40),
            Item("Pull-Up Bar", "Doorway bar, no screws needed.", 3900, 70),
            Item("Ab Wheel", "Dual-wheel roller with a foam knee pad.", 2200, 120),
        ),
    ),
)
