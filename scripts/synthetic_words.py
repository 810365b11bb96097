"""Word lists the synthetic AmazonTitles generator draws from (see ``synthetic.py``)."""

FIRST_NAMES = (
    "Judith Margaret David Cathy Victoria Richard Dorothy Theresa Stacy Isabel Martin Helen Oliver "
    "Amelia Thomas Grace Henry Eleanor Samuel Rosa Arthur Clara Edmund Harriet Felix Nora Hugo Ada "
    "Simon Lucy Patrick Maya Walter Irene Jonah Beatrice Tobias Vera Marcus Iris Leon Agnes Rupert"
).split()
LAST_NAMES = (
    "Kerr Glass Rowe Gregg Clayton Wolff Cheung Isby Hogg Foss Stevenson Millender Littleton Innes "
    "Graham Fennell Lindholm Hartley Ashworth Pembroke Whitlock Okafor Lindqvist Moreau Castellano "
    "Brennan Takahashi Novak Petrov Haddad Fairbanks Oduya Kowalski Marchetti Delacroix Sorensen"
).split()
PLACES = (
    "Cornwall;Edinburgh;the Yorkshire Dales;Lisbon;Vermont;the Scottish Highlands;Kyoto;Tasmania;"
    "Provence;New Orleans;the Norfolk Broads;Patagonia;Cape Cod;Lake Como;the Outer Hebrides;Montana;"
    "Crete;Quebec;the Black Forest;Galway;Savannah;Marrakesh;the Isle of Skye;Bruges;Oaxaca"
).split(";")
ADJECTIVES = (
    "Silent Hidden Forgotten Last Secret Broken Golden Distant Crimson Quiet Wild Burning Frozen "
    "Midnight Lost Little Bright Hollow Restless Shining Wandering Faithful Winter Summer Autumn "
    "Scarlet Silver Iron Velvet Paper Glass Salt Ashen Amber Emerald Painted Sleeping Drowned Stolen "
    "Borrowed Sunlit Moonlit Northern Southern Eastern Western Ancient Final Unfinished Invisible "
    "Gentle Bitter Sweet Savage Tender Honest Crooked Lonely Merry Curious Blind Dancing Singing "
    "Weeping Laughing Wicked Humble Proud Fallen Rising Second Seventh Thousandth Endless Narrow"
).split()
NOUNS = (
    "Garden River Lantern Harbour Orchard Compass Kingdom Tide Mirror Promise Island Witness Bridge "
    "Daughter Voyage Storm Season Cottage Frontier Archive Meadow Lighthouse Crossing Fortune Clock "
    "Sparrow Falcon Raven Fox Hare Wolf Stag Orchid Willow Rose Thistle Harvest Winter Empire Throne "
    "Crown Sword Shield Chapel Abbey Castle Manor Station Railway Canal Valley Mountain Forest Desert "
    "Ocean Shore Cliff Cave Tower Market Theatre Circus Carnival Ballroom Library Museum Studio "
    "Kitchen Bakery Vineyard Farm Ranch Quarry Mill Forge Foundry Ledger Map Atlas Journal Diary "
    "Portrait Sonata Requiem Ballad Hymn Riddle Cipher Key Lock Door Window Staircase Cellar Attic"
).split()
TOPICS = (
    "Gardening;Sourdough Baking;Watercolour Painting;Birdwatching;Woodworking;Astronomy;Beekeeping;"
    "Chess Strategy;Bread Making;Fly Fishing;Pottery;Bookbinding;Calligraphy;Mindfulness;Urban Sketching;Cheese Making;Rose Growing;Sea Kayaking;Classical Guitar;Tai Chi;Victorian Architecture;Ancient Egypt;The Tudors;Bird Song;Wild Swimming;Herbal Medicine;Family History;Mountain Walking;Home Brewing;Knitting;Photography;Sailing;"
    "Vegetarian Cooking;Medieval History;Roman Britain;Personal Finance;Public Speaking;Sudoku;"
    "Dog Training;Organic Chemistry;Calculus;Marine Biology;Jazz Piano"
).split(";")
SUBTITLE_PATTERNS = (
    "A Practical Guide for Beginners",
    "An Illustrated History",
    "The Complete Handbook",
    "{n} Projects for Every Season",
    "Lessons from {place}",
    "Everything You Need to Know",
    "A Year in {place}",
    "The True Story of a Family Secret",
)
PUBLISHERS = (
    "HarperCollins Penguin Macmillan Collins Bloomsbury Faber Hodder Vintage Orion Puffin Heinemann "
    "Routledge Wiley McGraw-Hill Pearson Chronicle Workman"
).split()
NEWSPAPERS = (
    "Sunday Times;The Observer;Daily Telegraph;Guardian;Mail on Sunday;Independent;Publishers Weekly;"
    "Booklist;Kirkus Reviews;The Times;Financial Times;Literary Review;Woman and Home;Scotsman"
).split(";")
PRAISE = (
    "A triumph", "Utterly gripping", "Wise, warm and funny", "Impossible to put down",
    "A masterpiece of accessible history", "Beautifully observed", "Heartbreaking and hopeful",
    "Meticulously researched", "A joy to read", "Funny, charming, upbeat and unputdownable",
)
GENRES = (
    "novel;thriller;memoir;family saga;mystery;picture book;historical novel;collection of essays;"
    "biography;cookbook;field guide;textbook;workbook;puzzle book;travel guide"
).split(";")
COLORS = "Neon Pink;Yellow;Navy Blue;Black;Ivory;Emerald Green;Burgundy;Charcoal Grey;Lavender;Coral;Teal;Mustard".split(";")
MATERIALS = "cotton;organic cotton;merino wool;nylon tulle;polyester fleece;linen;leather;bamboo;stainless steel;silicone;cast iron;oak;walnut;ABS plastic;tempered glass".split(";")
BRANDS = "Northfield;Kestrel;Bluewater;Alder & Finch;Copperline;Hearthstone;Tidewell;Juniper Lane;Brightpath;Oakhurst;Polaris;Wrenwood".split(";")
CLOTHING = "Ballet Tutu;Rain Jacket;Hiking Socks;Wool Scarf;Denim Overalls;Yoga Leggings;Fleece Hoodie;Sun Hat;Pyjama Set;Running Shorts".split(";")
WEARERS = "Girls;Boys;Women's;Men's;Adult;Toddler;Unisex".split(";")
HOME = "Chef's Knife;Dutch Oven;Salad Spinner;Pepper Mill;Cutting Board;French Press;Table Lamp;Bath Towel Set;Spice Rack;Wall Clock;Tea Kettle;Mixing Bowl Set".split(";")
TOYS = "Wooden Train Set;Building Blocks;Jigsaw Puzzle;Plush Bear;Marble Run;Dollhouse;Kite;Science Kit;Puppet Theatre;Board Game".split(";")
GADGETS = "USB-C Charger;Bluetooth Speaker;Phone Case;HDMI Cable;Wireless Mouse;Laptop Stand;Power Bank;Earbuds;Webcam;Card Reader".split(";")
FEATURES = (
    "machine washable;reinforced stitching;dishwasher safe;non-slip base;BPA free;lifetime warranty;"
    "fits most adults;ergonomic handle;adjustable strap;water resistant;gift boxed;replaceable battery;"
    "easy to assemble;soft-touch finish;folds flat for storage"
).split(";")
INSTRUMENTS = "piano;cello;acoustic guitar;saxophone;violin;banjo;harp;trumpet;accordion".split(";")
MUSIC_STYLES = "jazz;folk;blues;baroque;bluegrass;ambient;soul;celtic;gospel;swing".split(";")

#: Contents in the corpus that say nothing about the product.
JUNK_CONTENTS = (
    "Book by", "VHS Tape", "VHS", "DVD", "Audio CD", "Paperback", "Hardcover",
    "Library of Liberal Arts title.", "Previously published by Macmillan.",
    "Text: English, French (translation)", "Text: English (translation)Original Language: German",
    "Text: English, Spanish",
)
EDITION_NOTES = (
    "--This text refers to thePaperbackedition.",
    "--This text refers to theHardcoveredition.",
    "--This text refers to an out of print or unavailable edition of this title.",
)
#: Characters the corpus writes as HTML entities, and the spellings it uses for each.
ENTITY_SPELLINGS = {
    "'": ("&#39;", "&#x2019;", "&#8217;", "&rsquo;"),
    '"': ("&quot;", "&#8220;", "&#x201C;"),
    "&": ("&amp;",),
    " - ": (" &mdash; ", "&#x2014;", "&#8211;"),
    "...": ("&#x2026;", "&#8230;"),
    " ": ("&#160;", "&nbsp;", "&#xA0;"),
}
